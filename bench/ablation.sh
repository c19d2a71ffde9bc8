#!/usr/bin/env bash
# The paper's ablation ladder (arXiv 2506.18999, its ablation study) with the t2md CLI: the same step
# budget for every rung, each rung evaluated at every seed of SEEDS. See bench/ablation.md.
#
#   bash bench/ablation.sh T2MD TEACHER OUTDIR STEPS
#
# T2MD     the command prefix, e.g. 'node packages/cli/dist/bin.js' or 'node .gpu/gpu.mjs' (split on spaces)
# TEACHER  the teacher's model.safetensors, or the t2md train --out folder holding it
# OUTDIR   where each rung writes OUTDIR/<rung>/ (its rung.json last)
# STEPS    optimiser steps per rung (>= 2; the forcing, uni and no-sa rungs split them FORCING_STEPS + the rest)
#
# Environment knobs (defaults in brackets):
#   PARALLEL [1]        rungs run at once as background processes (they share the device)
#   RUNGS [all]         a space-separated subset of: teacher scratch teacher-init pseudo mixer forcing uni no-sa
#   SEEDS [0 1]         t2md eval --seed values: each rung is scored once per seed (prompt set and noise)
#   PROMPTS [200]       t2md eval --prompts (balanced over the six categories)
#   EVAL_STEPS [20]     t2md eval --steps (sampling steps per image)
#   FORCING_STEPS [STEPS/4]  teacher-forcing steps of the forcing, uni and no-sa rungs
#   PRESET []           --preset for t2md distill (default: the one the teacher file records)
#   NO_SA_LAYOUT []     student layout of the no-sa rung (default: HM-WM alternating, the teacher's depth)
#   DISTILL_ARGS []     extra flags for every t2md distill call (e.g. '--batch-size 128')
#   EVAL_ARGS []        extra flags for every t2md eval call
#   RESULTS_DIR [OUTDIR]  where <date>-<card>-ablation.json is (re)written after every rung (e.g. $OUT)
#   RESUME []           an earlier call's *-ablation.json: its finished rungs are kept (same settings only)
#   DEADLINE []         seconds this script may run: distill gets --time-limit, no rung starts too late
#   EVAL_RESERVE [60]   seconds kept back from DEADLINE for a rung's evals
#   RERUN [0]           1: run rungs again even when OUTDIR/<rung>/rung.json succeeded under this plan
#   ALLOW_DIRTY [0]     1: run from a tree that differs from its commit (the results say dirty: true)

# The rung_* functions are called by name ("rung_$name"), which shellcheck cannot follow.
# shellcheck disable=SC2317
set -uo pipefail

if (($# != 4)); then
  sed -n '2,/^$/p' "$0" | sed '/^$/d; s/^# \{0,1\}//' >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
JSON() { node "$HERE/ablation-json.mjs" "$@"; }
read -r -a CLI <<<"$1"
TEACHER=$2
STEPS=$4
if ! [[ $STEPS =~ ^[0-9]+$ ]] || ((STEPS < 2)); then
  echo "ablation.sh: STEPS must be an integer >= 2 (the +forcing rungs split it), got '$STEPS'." >&2
  exit 2
fi
[[ -d $TEACHER ]] && TEACHER=$TEACHER/model.safetensors
if [[ ! -f $TEACHER ]]; then
  echo "ablation.sh: teacher $TEACHER does not exist; pass the model.safetensors of t2md train (or its --out folder)." >&2
  exit 2
fi
OUTDIR=$(mkdir -p "$3" && cd "$3" && pwd) || {
  echo "ablation.sh: OUTDIR $3 cannot be created; pass a writable folder." >&2
  exit 2
}
PARALLEL=${PARALLEL:-1}
PROMPTS=${PROMPTS:-200}
EVAL_STEPS=${EVAL_STEPS:-20}
EVAL_RESERVE=${EVAL_RESERVE:-60}
FORCING_STEPS=${FORCING_STEPS:-$((STEPS / 4 > 0 ? STEPS / 4 : 1))}
for knob in PARALLEL PROMPTS EVAL_STEPS EVAL_RESERVE; do
  if ! [[ ${!knob} =~ ^[0-9]+$ ]] || ((${!knob} < 1)); then
    echo "ablation.sh: $knob must be an integer >= 1, got '${!knob}'." >&2
    exit 2
  fi
done
if [[ -n ${DEADLINE:-} ]] && ! [[ $DEADLINE =~ ^[0-9]+$ ]]; then
  echo "ablation.sh: DEADLINE must be a whole number of seconds, got '$DEADLINE'." >&2
  exit 2
fi
if ! [[ $FORCING_STEPS =~ ^[0-9]+$ ]] || ((FORCING_STEPS < 1 || FORCING_STEPS >= STEPS)); then
  echo "ablation.sh: FORCING_STEPS must be an integer in [1, STEPS-1], got '$FORCING_STEPS'." >&2
  exit 2
fi
DISTILL_STEPS=$((STEPS - FORCING_STEPS))
read -r -a RUNG_LIST <<<"${RUNGS:-teacher scratch teacher-init pseudo mixer forcing uni no-sa}"
read -r -a EXTRA <<<"${DISTILL_ARGS:-}"
read -r -a EVAL_EXTRA <<<"${EVAL_ARGS:-}"
read -r -a SEED_LIST <<<"${SEEDS:-0 1}"
PRESET_ARGS=()
[[ -n ${PRESET:-} ]] && PRESET_ARGS=(--preset "$PRESET")
START=$(date +%s)

# No self-attention: every block Mamba, alternating HM / WM, as deep as the teacher (its t2md.config).
if [[ -z ${NO_SA_LAYOUT:-} ]]; then
  NO_SA_LAYOUT=$(JSON layout "$TEACHER") || exit 2
fi

# The rungs. λ defaults (0.5, 0.2) are the preset's; "0" drops a loss term.
rung_teacher() { :; } # no training: the reference row
rung_scratch() {
  # Hybrid from scratch: no teacher weights, no teacher losses; everything trains (with only the
  # mixers trainable a fresh student's MLPs and embedders would stay random).
  distill "$1" --stage distill --steps "$STEPS" --no-teacher-init --trainable all --lambda-pseudo 0 --lambda-mixer 0
}
rung_teacher-init() { distill "$1" --stage distill --steps "$STEPS" --lambda-pseudo 0 --lambda-mixer 0; }
rung_pseudo() { distill "$1" --stage distill --steps "$STEPS" --lambda-mixer 0; }
rung_mixer() { distill "$1" --stage distill --steps "$STEPS"; }
forcing_then_distill() {
  local dir=$1
  shift
  distill "$dir" --stage forcing --steps "$FORCING_STEPS" "$@" || return
  # a forcing stage stopped by the deadline is not followed by the distill stage
  (($(JSON reached "$dir") >= FORCING_STEPS)) || return 0
  distill "$dir" --stage distill --steps "$DISTILL_STEPS" "$@"
}
rung_forcing() { forcing_then_distill "$1"; }
rung_uni() { forcing_then_distill "$1" --scan uni; }
rung_no-sa() { forcing_then_distill "$1" --layout "$NO_SA_LAYOUT"; }

for r in "${RUNG_LIST[@]}"; do
  if ! declare -F "rung_$r" >/dev/null; then
    echo "ablation.sh: unknown rung '$r' in RUNGS; use teacher scratch teacher-init pseudo mixer forcing uni no-sa." >&2
    exit 2
  fi
done

# Seconds left before DEADLINE (a large number without one).
left() { if [[ -n ${DEADLINE:-} ]]; then echo $((START + DEADLINE - $(date +%s))); else echo 999999; fi; }

# One t2md distill call of a rung: appended (shell-quoted, without the deadline's --time-limit) to
# DIR/commands.txt, output to DIR/train.log.
distill() {
  local dir=$1
  shift
  local cmd=("${CLI[@]}" distill --teacher "$TEACHER" --out "$dir" "${PRESET_ARGS[@]}" "$@" "${EXTRA[@]}")
  printf '%q ' "${cmd[@]}" | sed 's/ $//' >>"$dir/commands.txt"
  echo >>"$dir/commands.txt"
  local limit=()
  if [[ -n ${DEADLINE:-} ]]; then
    # at least 0.1 min: --time-limit takes a positive number (the rung then stops after a step or so)
    limit=(--time-limit "$(awk "BEGIN{m = ($(left) - $EVAL_RESERVE) / 60; print (m > 0.1 ? m : 0.1)}")")
  fi
  "${cmd[@]}" "${limit[@]}" >>"$dir/train.log" 2>&1
}

now() { date +%s.%N; }

# Trains and evaluates one rung into OUTDIR/<rung>/, ending with OUTDIR/<rung>/rung.json (written last,
# atomically: a rung cut off before it is run again from scratch).
run_rung() {
  local name=$1 dir=$OUTDIR/$1
  if [[ ${RERUN:-0} != 1 ]] && JSON ok "$name"; then
    echo "[$name] kept ($dir/rung.json succeeded under these settings; RERUN=1 to run it again)"
    return 0
  fi
  if (($(left) < EVAL_RESERVE + 30)); then
    echo "[$name] not started: $(left) s left before DEADLINE; run the ladder again with RESUME"
    return 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  : >"$dir/commands.txt"
  : >"$dir/eval-commands.txt"
  echo "[$name] training"
  local t0 t1 t2 rc=0 reached=0 model=$dir/model.safetensors
  t0=$(now)
  "rung_$name" "$dir" || rc=$?
  t1=$(now)
  if [[ $name == teacher ]]; then model=$TEACHER; else reached=$(JSON reached "$dir"); fi
  if ((rc == 0)) && [[ $name == teacher || $reached -ge $STEPS ]]; then
    echo "[$name] evaluating (seeds ${SEED_LIST[*]})"
    for seed in "${SEED_LIST[@]}"; do
      local ecmd=("${CLI[@]}" eval --model "$model" --prompts "$PROMPTS" --steps "$EVAL_STEPS" --seed "$seed" --json "${EVAL_EXTRA[@]}")
      printf '%q ' "${ecmd[@]}" | sed 's/ $//' >>"$dir/eval-commands.txt"
      echo >>"$dir/eval-commands.txt"
      "${ecmd[@]}" >"$dir/eval-$seed.json" 2>"$dir/eval-$seed.log"
    done
  fi
  t2=$(now)
  RUNG=$name RC=$rc REACHED=$reached T0=$t0 T1=$t1 T2=$t2 JSON rung
  # shellcheck disable=SC2016
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const s = r.evals ? r.evals.map((e) => e.overall.toFixed(3)).join(" / ") : "";
    console.log(r.error ? `[${r.rung}] FAILED: ${r.error}` : `[${r.rung}] done: overall ${s} (seeds), ${r.trainSeconds} s training, ${r.evalSeconds} s eval`);
    process.exit(r.error ? 1 : 0);' "$dir/rung.json"
}

# The results file and, beside it, the rungs' logs (no model files): rewritten after every rung, so a
# call cut off by its time limit still returns every rung that finished.
publish() {
  JSON publish "$@"
  local logs
  logs=$(dirname "$RESULTS")/ablation-logs.tgz
  tar -czf "$logs.tmp" --exclude='*.safetensors' --exclude='*.tmp' -C "$OUTDIR" . 2>/dev/null && mv "$logs.tmp" "$logs"
}

INFO_JSON=$OUTDIR/info.json
"${CLI[@]}" info --json >"$INFO_JSON" 2>"$OUTDIR/info.log"
export OUTDIR TEACHER STEPS FORCING_STEPS PROMPTS EVAL_STEPS PARALLEL NO_SA_LAYOUT INFO_JSON
RESULTS=$(CLI=$1 RUNG_LIST="${RUNG_LIST[*]}" JSON plan) || exit 2
echo "ablation: ${#RUNG_LIST[@]} rung(s), $STEPS steps each, seeds ${SEED_LIST[*]}, $PROMPTS prompts; results in $RESULTS"

failed=0
for r in "${RUNG_LIST[@]}"; do
  while (($(jobs -rp | wc -l) >= PARALLEL)); do
    wait -n || failed=1
    publish
  done
  run_rung "$r" &
done
while (($(jobs -rp | wc -l) > 0)); do
  wait -n || failed=1
  publish
done
publish --print
exit $failed
