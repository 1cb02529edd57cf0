#!/usr/bin/env bash
# The inversion recipe: a generator G and an encoder E trained together so that G(E(x)) keeps the expression,
# the mouth and the identity (docs/training.md, "Inversion that keeps the face"), then its gates.
#   bash examples/train_inversion.sh [WORK]        # default WORK: runs/inversion
# Stages (each resumable: run the script again with the same WORK after any stop; finished stages are skipped):
#   0. the generator and encoder it starts from: INIT, by default BASE/enc/bundle of examples/train_default.sh
#      (BASE default runs/default; made with UNTIL=enc when missing: 64-px StyleGAN2 7000 steps, small encoder
#      10000 steps, about 1.5 h on 2 CPU cores). The shipped inversion was started from models/sserd-synthetic
#      as of commit 18a5983, the float16 copy of those same two networks;
#   1. sserd synth images: 24000 crops of 3000 identities at 64 px, with per-crop labels (labels.jsonl);
#   2. sserd train-features: the domain feature network F (emotion + 40 renderer parameters, jittered inputs);
#   3. sserd train-autoencoder: G + E with region-weighted L1+L2, F's activations and heads, adversarial and
#      auxiliary terms;
#   4. benchmarks/inversion_gates.py: G0 and G1 on held-out identities, written to WORK/gates.json.
# Knobs (environment): SIZE, COUNT, SPEAKERS, FEAT_STEPS, AE_STEPS, AE_BATCH, LR, WARMUP, LAMBDA_FEAT, ENC_CHANNELS
# (base width of a new encoder, with INIT= only), INIT (a bundle whose generator and encoder start the autoencoder; INIT= empty: both from scratch), AE_MIN (a
# wall-time budget in minutes for one invocation of the autoencoder stage: it stops there, checkpointed and exported,
# and the next run of this script continues it), WORKERS, GATE_FACES (held-out faces per emotion).
set -euo pipefail
WORK=${1:-runs/inversion}
SIZE=${SIZE:-64}
FEAT_STEPS=${FEAT_STEPS:-1500}
AE_STEPS=${AE_STEPS:-23000}
AE_BATCH=${AE_BATCH:-8}
LR=${LR:-0.0003}
WARMUP=${WARMUP:-300}
LAMBDA_FEAT=${LAMBDA_FEAT:-0.5}
ENC_CHANNELS=${ENC_CHANNELS:-32}
BASE=${BASE:-runs/default}
INIT=${INIT-$BASE/enc/bundle}
WORKERS=${WORKERS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"
# shellcheck source=recipe_lib.sh
source "$HERE/recipe_lib.sh"   # limit, run

if [ -n "$INIT" ] && [ ! -f "$INIT/model.json" ]; then
    if [ "$INIT" = "$BASE/enc/bundle" ]; then UNTIL=enc bash "$HERE/train_default.sh" "$BASE"
    else echo "error: INIT=$INIT is not a bundle: give a bundle with a generator (and encoder), or INIT= for scratch" >&2
        exit 2; fi
fi

[ -f "$WORK/data/index.csv" ] || sserd synth images -o "$WORK/data" --count "${COUNT:-24000}" --size "$SIZE" \
    --speakers "${SPEAKERS:-3000}" --seed 0 --workers "$WORKERS" --quiet
run "$FEAT_STEPS" "$WORK/features" sserd train-features "$WORK/data" --checkpoint-every 500 --sample-every 500 \
    --workers "$WORKERS" --quiet
# shellcheck disable=SC2046
run "$AE_STEPS" "$WORK/ae" sserd train-autoencoder "$WORK/data" --features "$WORK/features" \
    $(if [ -n "$INIT" ]; then echo --model "$INIT"; else echo --encoder-channels "$ENC_CHANNELS"; fi) \
    --batch-size "$AE_BATCH" --lr "$LR" --warmup "$WARMUP" --lambda-feat "$LAMBDA_FEAT" --checkpoint-every 1000 \
    --sample-every 1000 --workers "$WORKERS" --quiet $(limit "${AE_MIN:-}")
if [ "$WORK/gates.json" -nt "$WORK/ae/bundle/model.json" ]; then echo "$WORK/gates.json: done"
else python "$HERE/../benchmarks/inversion_gates.py" --model "$WORK/ae/bundle" --per-emotion "${GATE_FACES:-24}" \
    --json "$WORK/gates.json" --sheet "$WORK/gates_sheet.png"; fi
echo "bundle: $WORK/ae/bundle"
