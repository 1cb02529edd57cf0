#!/usr/bin/env bash
# The recipe of the default bundle (models/sserd-synthetic): the synthetic world only, sized for a CPU.
# Every stage resumes where it stopped when the script is run again (same WORK folder).
#   bash examples/train_default.sh [WORK]        # default WORK: runs/default
# Then: the ablations of the paper (same recipe, one switch each), the held-out benchmark of all of them,
# and the packing of the fp16 bundle into models/ (set ABLATIONS=0 / PACK=0 to skip).
set -euo pipefail
WORK=${1:-runs/default}
SIZE=${SIZE:-64}
GAN_STEPS=${GAN_STEPS:-7000}
ENC_STEPS=${ENC_STEPS:-4000}
SSERD_STEPS=${SSERD_STEPS:-3000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK"

# run STAGE_DIR COMMAND...: run a training command, adding --resume when its run folder exists already
run() { local dir=$1; shift; if [ -d "$dir/checkpoints" ]; then "$@" -o "$dir" --resume; else "$@" -o "$dir"; fi; }

# 8000 crops of 1000 identities: the generator and encoder must cover unseen faces, not learn a few by heart
[ -f "$WORK/data/index.csv" ] || sserd synth images -o "$WORK/data" --count "${COUNT:-8000}" --size "$SIZE" \
    --speakers "${SPEAKERS:-1000}" --seed 0
run "$WORK/gan" sserd train-stylegan "$WORK/data" --size "$SIZE" --channel-max 64 --style-dim 128 --n-mlp 4 \
    --batch-size 8 --iterations "$GAN_STEPS" --checkpoint-every 500 --sample-every 500
run "$WORK/enc" sserd train-encoder "$WORK/data" --model "$WORK/gan/bundle" --backbone small \
    --batch-size 4 --iterations "$ENC_STEPS" --checkpoint-every 500 --sample-every 500
# --beta auto: the paper's 15 suits FFHQ's 18 x 512 W+; in this 10 x 128 one each emotion steps by its class separation
[ -f "$WORK/pairs/index.csv" ] || sserd build-pairs "$WORK/data" --model "$WORK/enc/bundle" -o "$WORK/pairs" --beta auto
train() { run "$1" sserd train "$WORK/data" "$WORK/pairs" --batch-size 2 --iterations "$SSERD_STEPS" \
    --checkpoint-every 500 --sample-every 500 "${@:2}"; }
train "$WORK/sserd"                                    # hybrid, with the contrastive loss: the shipped one
models=(hybrid="$WORK/sserd/bundle")
if [ "${ABLATIONS:-1}" = 1 ]; then
    train "$WORK/ablations/no-contrastive" --no-contrastive
    train "$WORK/ablations/paired" --data paired
    train "$WORK/ablations/unpaired" --data unpaired
    models+=(no-contrastive="$WORK/ablations/no-contrastive/bundle" paired="$WORK/ablations/paired/bundle"
             unpaired="$WORK/ablations/unpaired/bundle")
fi
if [ "${PACK:-1}" = 1 ]; then
    out="$HERE/../models/sserd-synthetic"
    python "$HERE/pack_default.py" "$WORK" --out "$out"        # fp16 copy; its benchmark row is "shipped"
    sserd eval synthetic "${models[@]/#/--model=}" --model shipped="$out" --speakers 6 --duration 1 \
        --set "$WORK/benchmark-set" --sheet "$WORK/benchmark_sheet.png" --json-out "$WORK/benchmark.json"
    python "$HERE/pack_default.py" "$WORK" --out "$out" --benchmark "$WORK/benchmark.json"
fi
echo "bundle: $WORK/sserd/bundle"
