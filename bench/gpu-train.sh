#!/usr/bin/env bash
# Training on the GPU machine within one device call (at most 10 minutes), time-bounded by the trainer's
# own --time-limit (at the limit it finishes the step and writes latest.safetensors and
# model.safetensors; --resume continues later), then evaluated.
#
#   bash bench/pack.sh   (the bundle of bench/gpu.ts with its source stamp)
#   # device (carry .gpu, and the teacher for `distill`):
#   SECS=420 bash .gpu/run.sh bash bench/gpu-train.sh teacher "b128:--batch-size 128 --lr 1e-3" ...
#   SECS=300 TEACHER=path bash .gpu/run.sh bash bench/gpu-train.sh distill "mixer:--stage distill" \
#     "forcing:--stage forcing+distill" ...   (forcing+distill: FORCING_SHARE of the time, then distill;
#     "fa:--stage forcing+distill --model-dtype f16 + --trainable all": flags after " + " are distill's only)
#   A model that needs a second block trains on from its committed file (fresh optimiser and schedule;
#   `init` in its metadata says so): "more:--init packages/shapes/models/teacher.safetensors --model-dtype f16"
#
# Each NAME:FLAGS argument is one run in parallel (own process, own folder); the GPU is far from busy
# with one small model, so parallel runs cost little. Memory is what limits them: on an 80 GB H100 two
# shapes distillation runs at batch 256 fit and three do not (2026-12-07; the trainer then stops at the
# first out-of-memory error), and two teacher runs at batch 512 fit. The device tool returns at most 8 files, so:
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

phase() { # phase DIR SECS ARGS... : a run bounded by the trainer's own --time-limit; prints the step reached
  local dir=$1 secs=$2; shift 2
  local minutes
  minutes=$(awk "BEGIN{print $secs/60}")
  # shellcheck disable=SC2068
  $T2MD $@ --time-limit "$minutes" --out "$dir" >>"$dir/run.out" 2>>"$dir/run.err"
  if [ ! -f "$dir/latest.safetensors" ]; then
    echo "no checkpoint after $secs s" >>"$dir/run.err"
    echo 0
    return
  fi
  reached "$dir"
}

stepped() { # stepped FLAGS STEP: the flags with the step reached; a run that set its own --steps (the
  # length of its schedule) keeps it, with the step the time limit stopped it at when it fell short
  local want
  want=$(sed -nE 's/.*--steps ([0-9]+).*/\1/p' <<<"$1")
  if [ -z "$want" ]; then
    echo "$1 --steps $2"
  elif [ "$want" = "$2" ]; then
    echo "$1"
  else
    echo "$1 (stopped by the time limit at step $2)"
  fi
}

one() { # one NAME FLAGS
  local name=$1 flags=$2 dir=$W/$1 cmd=""
  mkdir -p "$dir"
  if [ "$what" = teacher ]; then
    local s
    # shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
    s=$(phase "$dir" "$SECS" train --preset shapes $flags)
    cmd="t2md train --preset shapes $(stepped "$flags" "$s")"
  elif [[ "$flags" == *"--stage forcing+distill"* ]]; then
    # teacher forcing for FORCING_SHARE of the budget, then the distill stage into the same folder;
    # flags after a lone " + " go to the distill stage only ("--model-dtype f16 + --trainable all")
    local rest=${flags/--stage forcing+distill/} f d share=${FORCING_SHARE:-0.25} only=""
    if [[ "$rest" == *" + "* ]]; then only=${rest#* + }; rest=${rest%% + *}; fi
    # shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
    f=$(phase "$dir" "$(awk "BEGIN{print int($SECS*$share)}")" distill --teacher "${TEACHER:?}" --stage forcing $rest)
    # a stage stopped early is recorded complete at the step it reached, so the next one can chain from it
    # shellcheck disable=SC2086
    $T2MD distill --teacher "$TEACHER" --stage forcing $rest --resume --steps "$f" --out "$dir" >>"$dir/run.out" 2>>"$dir/run.err"
    # shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
    d=$(phase "$dir" "$(awk "BEGIN{print int($SECS*(1-$share))}")" distill --teacher "$TEACHER" --stage distill $rest $only)
    cmd="t2md distill --teacher teacher.safetensors --stage forcing $rest --steps $f && t2md distill --teacher teacher.safetensors --stage distill $rest $only --steps $d"
  else
    local s
    # shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
    s=$(phase "$dir" "$SECS" distill --teacher "${TEACHER:?}" $flags)
    cmd="t2md distill --teacher teacher.safetensors $(stepped "$flags" "$s")"
  fi
  echo "$cmd --out $name  # time-bounded: ${SECS} s on $(nvidia-smi --query-gpu=name --format=csv,noheader), $NRUNS runs in parallel" >"$dir/command.txt"
  log "$name: $cmd"
  # the model comes back even if the call's time runs out during the evals
  if [ -z "${KEEP:-}" ] || [[ " $KEEP " == *" $name "* ]]; then cp "$dir/model.safetensors" "$OUT/$name.safetensors"; fi
  [ "$PROMPTS" -gt 0 ] || return 0
  $T2MD eval --model "$dir/model.safetensors" --prompts "$PROMPTS" --json >"$dir/eval.json" 2>>"$dir/run.err"
  log "$name: eval $(cat "$dir/eval.json")"
}

W=$(mktemp -d)
NRUNS=$#
log "$what: $# runs of ${SECS} s in parallel on $(nvidia-smi --query-gpu=name --format=csv,noheader)"
for spec in "$@"; do
  one "${spec%%:*}" "${spec#*:}" &
done
wait
tar -czf "$OUT/runs.tgz" --exclude='*.safetensors' -C "$W" .
log "done"
