#!/usr/bin/env bash
# The checks only a GPU can make, as one call on a lent GPU machine (report in $OUT/gpu_check.txt):
#   1. the test suite with CUDA present (the CUDA-only tests, and every test whose device is "auto");
#   2. `sserd edit` on CUDA with the default bundle: frames, audio, and the output against the CPU's;
#   3. edit speed on CUDA (benchmarks/edit_speed.py --device cuda);
#   4. bfloat16 mixed-precision training (the CUDA default) of every stage, 64 px, 60 steps each.
# With --inversion (a second call, to stay inside one call's time limit) only:
#   5. bfloat16 training of the inversion recipe (examples/train_inversion.sh: train-features, train-autoencoder,
#      the gates), 64 px, with its step times.
#
# That machine downloads nothing and lacks PyAV, dlib and the landmark model, so prepare them here first:
#   bash benchmarks/gpu_check.sh --prepare        # fills gpu_wheels/ (about 50 MB, git-ignored)
# then, with the device tool: run(command="bash benchmarks/gpu_check.sh", carry=["gpu_wheels"], timeout_s=540)
# PY (default python3: the device image's Python, which holds CUDA torch) and OUT (default /tmp/out) can be set.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=gpu_wheels

if [ "${1:-}" = --prepare ]; then
    set -e
    mkdir -p "$WHEELS/site/face_recognition_models/models"
    grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
    # the device image's Python is 3.12 (../.library/device/KINDS.md)
    pip download -q --only-binary=:all: --no-deps --python-version "${DEVICE_PY:-3.12}" \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$WHEELS" "av>=12" "dlib-bin>=19.24"
    # only the 5-point landmark model (9 MB) of face-recognition-models, in the package's layout
    models=$(python -c 'import importlib.util, pathlib
print(pathlib.Path(importlib.util.find_spec("face_recognition_models").origin).parent / "models")')
    cp "$models/shape_predictor_5_face_landmarks.dat" "$WHEELS/site/face_recognition_models/models/"
    : > "$WHEELS/site/face_recognition_models/__init__.py"
    du -sh "$WHEELS"
    exit 0
fi

PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/gpu_check/bin
report="$OUT/gpu_check.txt"
say() { echo "== $*" | tee -a "$report"; }
: > "$report"

if ! $PY -c 'import av, dlib' 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --target /tmp/gpu_check/lib "$WHEELS"/*.whl >> "$report" 2>&1
    export PYTHONPATH=/tmp/gpu_check/lib
fi
export PYTHONPATH=$PWD:$PWD/$WHEELS/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# the sserd command without installing the package into the image's environment
printf '#!/bin/sh\nexec %s -c "import sys; from sserd_cli.cli import main; sys.argv[0] = \\"sserd\\"; main()" "$@"\n' \
    "$PY" > /tmp/gpu_check/bin/sserd
chmod +x /tmp/gpu_check/bin/sserd
export PATH=/tmp/gpu_check/bin:$PATH

say machine
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c 'import sys, torch, av, dlib; print("python", sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.cuda.is_available(), "av", av.__version__, "dlib", dlib.__version__)'
  nproc; } >> "$report" 2>&1

if [ "${1:-}" = --inversion ]; then
    say "5. bfloat16 training of the inversion recipe (64 px)"
    work=/tmp/gpu_check/inversion
    SIZE=64 COUNT=4000 SPEAKERS=300 FEAT_STEPS=200 AE_STEPS=300 AE_BATCH=32 GATE_FACES=6 WORKERS=4 OMP_NUM_THREADS=4 \
        timeout 400 bash examples/train_inversion.sh "$work" > /tmp/gpu_check/inversion.txt 2>&1
    echo "rc=$?" >> /tmp/gpu_check/inversion.txt
    grep -E "G0|G1|rc=" /tmp/gpu_check/inversion.txt >> "$report"
    $PY - "$work" >> "$report" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
for stage in ("features", "ae"):
    path = Path(sys.argv[1]) / stage / "summary.json"
    if not path.is_file():
        print(stage, "no summary"); continue
    s = json.loads(path.read_text())
    print(stage, "device", s.get("device"), "steps", s["iterations"], f"s/step {s['sec_per_step']:.3f}", s["final_losses"])
EOF
    say done
    cat "$report"
    exit 0
fi

say "1. tests with CUDA present"
timeout "${TEST_TIMEOUT:-240}" $PY -m pytest -q -p no:cacheprovider tests > /tmp/gpu_check/tests.txt 2>&1
echo "rc=$?" >> /tmp/gpu_check/tests.txt
grep -E "passed|failed|error|FAILED|ERROR|rc=" /tmp/gpu_check/tests.txt | tail -30 >> "$report"
cp /tmp/gpu_check/tests.txt "$OUT/tests.txt"

say "2. sserd edit on CUDA against CPU"
clip=examples/clips/speaker_a.mp4
TIMEFORMAT="%R s wall"
for device in cuda cpu; do
    echo -n "$device: " >> "$report"
    { time sserd edit "$clip" --ref examples/refs/angry.png --device "$device" -o "/tmp/gpu_check/edit_$device.mp4" \
        --overwrite --quiet 2>/dev/null; } 2>> "$report"
done
$PY - "$clip" /tmp/gpu_check/edit_cuda.mp4 /tmp/gpu_check/edit_cpu.mp4 >> "$report" 2>&1 <<'EOF'
import sys
import av
import numpy as np

def read(path):
    with av.open(path) as c:
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    with av.open(path) as c:
        audio = [bytes(p) for p in c.demux(audio=0) if p.size]
    return frames, audio

src, cuda, cpu = (read(p) for p in sys.argv[1:4])
print("frames source/cuda/cpu:", len(src[0]), len(cuda[0]), len(cpu[0]),
      "| pts equal:", [p for p, _ in src[0]] == [p for p, _ in cuda[0]],
      "| audio bytes equal:", src[1] == cuda[1])
diff = [np.abs(a.astype(int) - b).mean() for (_, a), (_, b) in zip(cuda[0], cpu[0])]
edit = [np.abs(a.astype(int) - b).mean() for (_, a), (_, b) in zip(cuda[0], src[0])]
print(f"cuda vs cpu output: mean |diff| {np.mean(diff):.3f}, worst frame {np.max(diff):.3f} (8-bit levels);"
      f" cuda vs source {np.mean(edit):.3f}")
EOF

say "3. edit speed on CUDA"
timeout 180 $PY benchmarks/edit_speed.py --model sserd-synthetic --device cuda --seconds 4 --repeats 2 \
    --skip-memory >> "$report" 2>&1

say "4. bfloat16 training of every stage (64 px, 60 steps each)"
work=/tmp/gpu_check/train
SIZE=64 COUNT=1400 SPEAKERS=100 GAN_STEPS=60 ENC_STEPS=60 SSERD_STEPS=60 GAN_BATCH=16 ENC_BATCH=8 SSERD_BATCH=8 \
    WORKERS=4 OMP_NUM_THREADS=4 ABLATIONS=0 PACK=0 timeout 240 bash examples/train_default.sh "$work" \
    > /tmp/gpu_check/train.txt 2>&1
echo "rc=$?" >> /tmp/gpu_check/train.txt
tail -3 /tmp/gpu_check/train.txt >> "$report"
$PY - "$work" >> "$report" 2>&1 <<'EOF'
import json, math, sys
from pathlib import Path
for stage in ("gan", "enc", "sserd"):
    path = Path(sys.argv[1]) / stage / "summary.json"
    if not path.is_file():
        print(stage, "no summary"); continue
    s = json.loads(path.read_text())
    amp = json.loads((path.parent / "config.json").read_text())["config"].get("amp")
    losses = s.get("final_losses", {})
    print(stage, "device", s.get("device"), "bf16 autocast", amp and s.get("device", "").startswith("cuda"),
          "steps", s["iterations"],
          f"s/step {s['sec_per_step']:.3f}", "losses finite:", all(math.isfinite(v) for v in losses.values()))
EOF
say done
cat "$report"
