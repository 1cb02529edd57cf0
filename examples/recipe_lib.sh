# Helpers shared by the training recipes (sourced by examples/train_*.sh; not a script of its own).

# limit MINUTES: the --time-limit option of a stage, when a budget is set
limit() { if [ -n "${1:-}" ]; then echo "--time-limit $1"; fi; }
# run STEPS STAGE_DIR COMMAND...: run a training command towards STEPS, adding --resume when its run folder holds a
# checkpoint; a stage that already reached STEPS (its summary says so) is skipped, so the script can be run again
run() {
    local steps=$1 dir=$2; shift 2
    if [ -f "$dir/summary.json" ] && python -c 'import json, sys; s = json.load(open(sys.argv[1]))
sys.exit(0 if s["iterations"] >= int(sys.argv[2]) else 1)' "$dir/summary.json" "$steps"; then
        echo "$dir: done ($steps steps)"
    elif compgen -G "$dir/checkpoints/*.safetensors" > /dev/null; then "$@" --iterations "$steps" -o "$dir" --resume
    else "$@" --iterations "$steps" -o "$dir"; fi
}
