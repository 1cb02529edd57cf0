#!/usr/bin/env bash
# The recipe of the default bundle (models/sserd-synthetic): the synthetic world only, 64 px, small channel counts,
# sized for a 2-core CPU (1 h 46 min there for the shipped bundle, 2.5 h with the ablations and the benchmark;
# README, "Measured figures").
# Every stage resumes where it stopped when the script is run again (same WORK folder); finished stages are
# skipped. A later stage is not redone when an earlier one changes: delete its folder to retrain it.
#   bash examples/train_default.sh [WORK]        # default WORK: runs/default
# Then: the ablations of the paper (same recipe, one switch each), the held-out benchmark of all of them
# (skipped when its JSON is newer than every bundle), and the packing of the fp16 bundle into models/
# (set ABLATIONS=0 / PACK=0 to skip).
#
# Knobs (environment): UNTIL=enc (stop after the encoder stage), SIZE, CH_MAX, STYLE_DIM, the step counts and batch sizes below, LAYERS (the W+ rows the
# pair-building edit moves; LAYERS= empty for every row), WORKERS (decoding threads), OUT (where PACK writes the
# bundle; default models/sserd-synthetic), EVAL_SPEAKERS and EVAL_SECONDS (the held-out benchmark's size).
# GAN_MIN, ENC_MIN, SSERD_MIN give a stage a wall-time budget in minutes (--time-limit): it stops there,
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
SSERD_STEPS=${SSERD_STEPS:-3000}
LAYERS=${LAYERS-0-5}
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
# --beta auto: the paper's 15 suits FFHQ's 18 x 512 W+; in this small W+ (10 x 128 at 64 px) each emotion steps by its
# class separation. --layers 0-5: the edit moves the coarse and middle rows only; moving the fine rows 6-9 too
# changed skin tone with the expression (README, "Results of the default recipe")
[ -f "$WORK/pairs/index.csv" ] || sserd build-pairs "$WORK/data" --model "$WORK/enc/bundle" -o "$WORK/pairs" \
    --beta auto ${LAYERS:+--layers "$LAYERS"} --workers "$WORKERS" --quiet
# shellcheck disable=SC2046
train() { run "$SSERD_STEPS" "$1" sserd train "$WORK/data" "$WORK/pairs" --batch-size "$SSERD_BATCH" \
    --checkpoint-every 500 --sample-every 500 --workers "$WORKERS" --quiet $(limit "${SSERD_MIN:-}") "${@:2}"; }
variants=("$WORK/sserd")                                     # hybrid, with the contrastive loss: the shipped one
switches=("")
if [ "${ABLATIONS:-1}" = 1 ]; then
    variants+=("$WORK/ablations/no-contrastive" "$WORK/ablations/paired" "$WORK/ablations/unpaired")
    switches+=("--no-contrastive" "--data paired" "--data unpaired")
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
