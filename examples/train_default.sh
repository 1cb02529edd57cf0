#!/usr/bin/env bash
# The recipe of the default bundle (models/sserd-synthetic): the synthetic world only, 64 px, small channel counts,
# sized for a 2-core CPU (docs/measurements.md).
#   bash examples/train_default.sh [WORK]        # default WORK: runs/default
# Stages, each resumable (run the script again with the same WORK after any stop; finished stages are skipped;
# a later stage is not redone when an earlier one changes: delete its folder to retrain it):
#   1. gan, enc: a 64-px StyleGAN2 and an encoder on 8000 synthetic crops (UNTIL=enc stops after these);
#   2. inversion: examples/train_inversion.sh WORK/inversion started from enc: G and E trained together so
#      that G(E(x)) keeps expression, mouth and identity, and its gates G0/G1;
#   3. pairs: regression edit directions on the inversion's codes (all W+ rows, the speech controls projected
#      out, beta = each slope's length) and the paired set they render, from SOURCES neutral crops;
#   4. sserd: the CELCL, hybrid (eq. 13-14) with the contrastive loss, plus the latent-step loss on banked pair
#      codes (LAMBDA_LATENT; not the paper's) that trains alone for the first WARMUP steps (no rendering);
#   5. the paper's ablations, same recipe with one switch each (no contrastive; paired only; unpaired only,
#      which has no pairs and so no latent-step loss), the held-out benchmark of all of them (skipped when its
#      JSON is newer than every bundle), and the packing of the fp16 bundle into models/ (ABLATIONS=0 / PACK=0 skip).
#
# Knobs (environment): UNTIL=enc, SIZE, CH_MAX, STYLE_DIM, the step counts and batch sizes below (SSERD_STEPS counts
# the WARMUP steps too), SSERD_LR, LAMBDA_LATENT, LAYERS (W+ rows the pair-building edit may move; empty = every
# row), SOURCES, WORKERS (decoding threads), OUT (where PACK writes the bundle; default models/sserd-synthetic),
# EVAL_SPEAKERS and EVAL_SECONDS (the held-out benchmark's size), and those of examples/train_inversion.sh
# (FEAT_STEPS, AE_STEPS, AE_BATCH, GATE_FACES, INV_COUNT and INV_SPEAKERS for its data's COUNT and SPEAKERS).
# GAN_MIN, ENC_MIN, AE_MIN, SSERD_MIN give a stage a wall-time budget in minutes (--time-limit): it stops there,
# checkpointed and exported, and a later run of this script continues it towards its step count.
# PARALLEL=1 trains the hybrid model and the three ablations at the same time (with OMP_NUM_THREADS=1 on a small
# CPU; on an H200 it was slower in sum than one after another).
set -euo pipefail
WORK=${1:-runs/default}
SIZE=${SIZE:-64}
CH_MAX=${CH_MAX:-64}
STYLE_DIM=${STYLE_DIM:-128}
GAN_STEPS=${GAN_STEPS:-7000}
ENC_STEPS=${ENC_STEPS:-10000}
SSERD_STEPS=${SSERD_STEPS:-3500}
WARMUP=${WARMUP:-3000}
SSERD_LR=${SSERD_LR:-0.001}
LAMBDA_LATENT=${LAMBDA_LATENT:-100}
LAYERS=${LAYERS-}
SOURCES=${SOURCES:-1500}
GAN_BATCH=${GAN_BATCH:-8}
ENC_BATCH=${ENC_BATCH:-4}
SSERD_BATCH=${SSERD_BATCH:-2}
WORKERS=${WORKERS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"

# shellcheck source=recipe_lib.sh
source "$HERE/recipe_lib.sh"   # limit, run

# 8000 crops of 1000 identities: the generator and encoder must cover unseen faces, not learn a few by heart
[ -f "$WORK/data/index.csv" ] || sserd synth images -o "$WORK/data" --count "${COUNT:-8000}" --size "$SIZE" \
    --speakers "${SPEAKERS:-1000}" --seed 0 --quiet
# shellcheck disable=SC2046
run "$GAN_STEPS" "$WORK/gan" sserd train-stylegan "$WORK/data" --size "$SIZE" --channel-max "$CH_MAX" --style-dim "$STYLE_DIM" --n-mlp 4 \
    --batch-size "$GAN_BATCH" --checkpoint-every 500 --sample-every 500 --workers "$WORKERS" \
    --quiet $(limit "${GAN_MIN:-}")
# shellcheck disable=SC2046
run "$ENC_STEPS" "$WORK/enc" sserd train-encoder "$WORK/data" --model "$WORK/gan/bundle" --backbone small \
    --batch-size "$ENC_BATCH" --checkpoint-every 500 --sample-every 500 --workers "$WORKERS" \
    --quiet $(limit "${ENC_MIN:-}")
# UNTIL=enc stops here: the generator and encoder that examples/train_inversion.sh starts from
if [ "${UNTIL:-}" = enc ]; then echo "bundle: $WORK/enc/bundle"; exit 0; fi
# the inversion G + E, started from enc (examples/train_inversion.sh; its data: 24000 crops of 3000 identities)
SIZE="$SIZE" WORKERS="$WORKERS" COUNT=${INV_COUNT:-24000} SPEAKERS=${INV_SPEAKERS:-3000} BASE="$WORK" INIT="$WORK/enc/bundle" \
    bash "$HERE/train_inversion.sh" "$WORK/inversion"
# regression directions: the least-squares slope of the codes on each emotion's intensity, with the speech controls
# of labels.jsonl regressed out, so the step keeps the mouth; beta auto = the slope's length (gate G2, docs/inversion-and-direction-gates.md)
[ -f "$WORK/pairs/index.csv" ] || sserd build-pairs "$WORK/inversion/data" --model "$WORK/inversion/ae/bundle" \
    -o "$WORK/pairs" --direction regression --beta auto --max-sources "$SOURCES" ${LAYERS:+--layers "$LAYERS"} \
    --workers "$WORKERS" --quiet
# shellcheck disable=SC2046
train() { run "$SSERD_STEPS" "$1" sserd train "$WORK/inversion/data" "$WORK/pairs" --batch-size "$SSERD_BATCH" \
    --lr "$SSERD_LR" --checkpoint-every 500 --sample-every 500 --workers "$WORKERS" --quiet \
    $(limit "${SSERD_MIN:-}") "${@:2}"; }
latent="--lambda-latent $LAMBDA_LATENT --latent-warmup $WARMUP"
variants=("$WORK/sserd")                                     # hybrid, with the contrastive loss: the shipped one
switches=("$latent")
if [ "${ABLATIONS:-1}" = 1 ]; then
    variants+=("$WORK/ablations/no-contrastive" "$WORK/ablations/paired" "$WORK/ablations/unpaired")
    switches+=("$latent --no-contrastive" "$latent --data paired" "--data unpaired")  # unpaired: no pairs, no bank
fi
pids=()
for i in "${!variants[@]}"; do
    # shellcheck disable=SC2086
    if [ "${PARALLEL:-0}" = 1 ]; then train "${variants[$i]}" ${switches[$i]} & pids+=($!)
    else train "${variants[$i]}" ${switches[$i]}; fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
models=(hybrid="$WORK/sserd/bundle")                        # LABEL=BUNDLE for eval; an ablation's label is its folder
for v in "${variants[@]:1}"; do models+=("$(basename "$v")=$v/bundle"); done
if [ "${PACK:-1}" = 1 ]; then
    out=${OUT:-"$HERE/../models/sserd-synthetic"}
    # the benchmark is done when it is newer than every bundle it measured
    fresh=1
    for b in "${models[@]#*=}"; do [ "$WORK/benchmark.json" -nt "$b/model.json" ] || fresh=0; done
    if [ "$fresh" = 1 ] && [ -f "$out/model.json" ]; then echo "$WORK/benchmark.json: done"
    else
        python "$HERE/pack_default.py" "$WORK" --out "$out"        # fp16 copy; its benchmark row is "shipped"
        sserd eval synthetic "${models[@]/#/--model=}" --model shipped="$out" --speakers "${EVAL_SPEAKERS:-6}" \
            --duration "${EVAL_SECONDS:-1}" \
            --set "$WORK/benchmark-set" --sheet "$WORK/benchmark_sheet.png" --json-out "$WORK/benchmark.json"
    fi
    python "$HERE/pack_default.py" "$WORK" --out "$out" --benchmark "$WORK/benchmark.json"
fi
echo "bundle: $WORK/sserd/bundle"
