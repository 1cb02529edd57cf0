#!/usr/bin/env bash
# Edit every clip in a folder to every emotion: OUT/<emotion>/<clip>.mp4.
#   bash examples/batch_edit.sh CLIPS_DIR OUT_DIR [--model BUNDLE] [other sserd edit options]
set -euo pipefail
clips=${1:?usage: batch_edit.sh CLIPS_DIR OUT_DIR [sserd edit options]}
out=${2:?usage: batch_edit.sh CLIPS_DIR OUT_DIR [sserd edit options]}
shift 2
mkdir -p "$out"
status=0
for emotion in neutral happy angry surprised fear sad disgusted; do
    # one sserd call per emotion edits the whole folder (-o a folder); failures are reported, others go on
    mkdir -p "$out/$emotion"
    sserd edit "$clips" --emotion "$emotion" -o "$out/$emotion" "$@" || status=1
done
exit $status
