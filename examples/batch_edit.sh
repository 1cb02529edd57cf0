#!/usr/bin/env bash
# Edit every clip in a folder to every emotion: OUT/<emotion>/<clip>.mp4.
#   bash examples/batch_edit.sh CLIPS_DIR OUT_DIR [sserd edit options]
#   REFS=examples/refs bash examples/batch_edit.sh examples/clips out   # target = REFS/<emotion>.png
# Without REFS the target is the emotion name (the model's mean code of that emotion).
set -euo pipefail
clips=${1:?usage: batch_edit.sh CLIPS_DIR OUT_DIR [sserd edit options]}
out=${2:?usage: batch_edit.sh CLIPS_DIR OUT_DIR [sserd edit options]}
shift 2
mkdir -p "$out"
status=0
for emotion in neutral happy angry surprised fear sad disgusted; do
    if [ -n "${REFS:-}" ]; then target=(--ref "$REFS/$emotion.png"); else target=(--emotion "$emotion"); fi
    # one sserd call per emotion edits the whole folder (-o a folder); failures are reported, others go on
    mkdir -p "$out/$emotion"
    sserd edit "$clips" "${target[@]}" -o "$out/$emotion" "$@" || status=1
done
exit $status
