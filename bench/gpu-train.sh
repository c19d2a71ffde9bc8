#!/usr/bin/env bash
# Training on the GPU machine within one device call (at most 10 minutes), time-bounded: each run gets
# SIGINT after its budget (the trainer then saves a checkpoint), is finished at the step it reached
# with `--resume --steps <reached>` (which writes model.safetensors), and is evaluated.
#
#   bash ../shared/device/pack.sh bench/gpu.ts
#   # device (carry .gpu, and the teacher for `distill`):
#   SECS=420 bash .gpu/run.sh bash bench/gpu-train.sh teacher "b128:--batch-size 128 --lr 1e-3" ...
#   SECS=300 TEACHER=path bash .gpu/run.sh bash bench/gpu-train.sh distill "full:" "scratch:--no-teacher-init" ...
#
# Each NAME:FLAGS argument is one run in parallel (own process, own folder); the GPU is far from busy
# with one small model, so parallel runs cost little. The device tool returns at most 8 files, so:
# $OUT/train.log, $OUT/runs.tgz (every run's metrics.jsonl, eval.json, command.txt and logs) and
# $OUT/NAME.safetensors for each NAME listed in KEEP (default: all runs).
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
SECS=${SECS:-420}
PROMPTS=${PROMPTS:-200}
what=$1; shift
log() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/train.log"; }

reached() { # the step in DIR/latest.safetensors' metadata
  node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    const n = Number(b.readBigUInt64LE(0));
    const m = JSON.parse(b.subarray(8, 8 + n).toString()).__metadata__;
    process.stdout.write(String(JSON.parse(m["t2md.train"]).step));' "$1/latest.safetensors"
}

one() { # one NAME FLAGS
  local name=$1 flags=$2 dir=$W/$1
  mkdir -p "$dir"
  local base
  if [ "$what" = teacher ]; then base="train --preset shapes"; else base="distill --teacher ${TEACHER:?} --stage ${STAGE:-all}"; fi
  # shellcheck disable=SC2086
  timeout -s INT "$SECS" $T2MD $base $flags --out "$dir" >"$dir/run.out" 2>"$dir/run.err"
  local step
  step=$(reached "$dir")
  # shellcheck disable=SC2086
  $T2MD $base $flags --resume --steps "$step" --out "$dir" >>"$dir/run.out" 2>>"$dir/run.err"
  echo "t2md $base $flags --steps $step --out $name  # (time-bounded run: ${SECS} s on $(nvidia-smi --query-gpu=name --format=csv,noheader))" >"$dir/command.txt"
  log "$name: stopped at step $step"
  # the model comes back even if the call's time runs out during the evals
  if [ -z "${KEEP:-}" ] || [[ " $KEEP " == *" $name "* ]]; then cp "$dir/model.safetensors" "$OUT/$name.safetensors"; fi
  $T2MD eval --model "$dir/model.safetensors" --prompts "$PROMPTS" --json >"$dir/eval.json" 2>>"$dir/run.err"
  log "$name: eval $(cat "$dir/eval.json")"
}

W=$(mktemp -d)
log "$what: $# runs of ${SECS} s in parallel on $(nvidia-smi --query-gpu=name --format=csv,noheader)"
for spec in "$@"; do
  one "${spec%%:*}" "${spec#*:}" &
done
wait
tar -czf "$OUT/runs.tgz" --exclude='*.safetensors' -C "$W" .
log "done"
