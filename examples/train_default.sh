#!/usr/bin/env bash
# The recipe of the default bundle (models/sserd-synthetic): the synthetic world only, sized for a CPU.
# Every stage resumes where it stopped when the script is run again (same WORK folder).
#   bash examples/train_default.sh [WORK]        # default WORK: runs/default
set -euo pipefail
WORK=${1:-runs/default}
SIZE=${SIZE:-64}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$WORK"

# run STAGE_DIR COMMAND...: run a training command, adding --resume when its run folder exists already
run() { local dir=$1; shift; if [ -d "$dir/checkpoints" ]; then "$@" -o "$dir" --resume; else "$@" -o "$dir"; fi; }

[ -f "$WORK/data/index.csv" ] || sserd synth images -o "$WORK/data" --count "${COUNT:-4000}" --size "$SIZE" --speakers 40 --seed 0
run "$WORK/gan" sserd train-stylegan "$WORK/data" --size "$SIZE" --channel-max 64 --style-dim 128 --n-mlp 4 \
    --batch-size 8 --iterations "${GAN_STEPS:-8000}" --checkpoint-every 500 --sample-every 500
run "$WORK/enc" sserd train-encoder "$WORK/data" --model "$WORK/gan/bundle" --backbone small \
    --batch-size 4 --iterations "${ENC_STEPS:-3000}" --checkpoint-every 500 --sample-every 500
[ -f "$WORK/pairs/index.csv" ] || sserd build-pairs "$WORK/data" --model "$WORK/enc/bundle" -o "$WORK/pairs"
run "$WORK/sserd" sserd train "$WORK/data" "$WORK/pairs" --batch-size 2 --iterations "${SSERD_STEPS:-3000}" \
    --checkpoint-every 500 --sample-every 500
echo "bundle: $WORK/sserd/bundle"
