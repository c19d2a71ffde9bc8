#!/usr/bin/env bash
# The paper's ablation ladder (arXiv 2506.18999, GenEval table) with the t2md CLI, the same step budget
# for every rung. See bench/ablation.md.
#
#   bash bench/ablation.sh T2MD TEACHER OUTDIR STEPS
#
# T2MD     the command prefix, e.g. 'node packages/cli/dist/bin.js' or 'node .gpu/gpu.mjs' (split on spaces)
# TEACHER  the teacher's model.safetensors, or the t2md train --out folder holding it
# OUTDIR   where each rung writes OUTDIR/<rung>/ and the summary OUTDIR/ablation.json
# STEPS    optimiser steps per rung (>= 2; the +forcing rungs split them FORCING_STEPS + the rest)
#
# Environment knobs (defaults in brackets):
#   PARALLEL [1]        rungs run at once as background processes
#   RUNGS [all]         a space-separated subset of: teacher scratch teacher-init pseudo mixer forcing uni no-sa
#   PROMPTS [60]        t2md eval --prompts (balanced over the six categories)
#   EVAL_STEPS [20]     t2md eval --steps (sampling steps per image)
#   FORCING_STEPS [STEPS/4]  teacher-forcing steps of the forcing, uni and no-sa rungs
#   PRESET []           --preset for t2md distill (default: the one the teacher file records)
#   NO_SA_LAYOUT []     student layout of the no-sa rung (default: HM-WM alternating, the teacher's depth)
#   DISTILL_ARGS []     extra flags for every t2md distill call (e.g. '--batch-size 64 --backend webgpu')
#   EVAL_ARGS []        extra flags for every t2md eval call (e.g. '--backend webgpu')
#   RERUN [0]           1: run rungs again even when OUTDIR/<rung>/rung.json exists (else they are kept)
set -uo pipefail

if (($# != 4)); then
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
read -r -a CLI <<<"$1"
TEACHER=$2
OUT=$3
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
PARALLEL=${PARALLEL:-1}
PROMPTS=${PROMPTS:-60}
EVAL_STEPS=${EVAL_STEPS:-20}
FORCING_STEPS=${FORCING_STEPS:-$((STEPS / 4 > 0 ? STEPS / 4 : 1))}
if ! [[ $FORCING_STEPS =~ ^[0-9]+$ ]] || ((FORCING_STEPS < 1 || FORCING_STEPS >= STEPS)); then
  echo "ablation.sh: FORCING_STEPS must be an integer in [1, STEPS-1], got '$FORCING_STEPS'." >&2
  exit 2
fi
DISTILL_STEPS=$((STEPS - FORCING_STEPS))
read -r -a RUNG_LIST <<<"${RUNGS:-teacher scratch teacher-init pseudo mixer forcing uni no-sa}"
read -r -a EXTRA <<<"${DISTILL_ARGS:-}"
read -r -a EVAL_EXTRA <<<"${EVAL_ARGS:-}"
PRESET_ARGS=()
[[ -n ${PRESET:-} ]] && PRESET_ARGS=(--preset "$PRESET")
mkdir -p "$OUT"

# No self-attention: every block Mamba, alternating HM / WM, as deep as the teacher (its t2md.config).
if [[ -z ${NO_SA_LAYOUT:-} ]]; then
  NO_SA_LAYOUT=$(node -e '
    const fs = require("fs"); const fd = fs.openSync(process.argv[1], "r"); const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0); const n = Number(len.readBigUInt64LE(0)); const h = Buffer.alloc(n);
    fs.readSync(fd, h, 0, n, 8); const cfg = JSON.parse(JSON.parse(h.toString()).__metadata__["t2md.config"]);
    const depth = cfg.depth ?? cfg.layout.split("-").length;
    console.log(Array.from({ length: depth }, (_, i) => (i % 2 ? "WM" : "HM")).join("-"));' "$TEACHER") || {
    echo "ablation.sh: could not read the teacher's depth from $TEACHER; set NO_SA_LAYOUT." >&2
    exit 2
  }
fi

# One t2md distill call of a rung: appended (shell-quoted) to DIR/commands.txt, output to DIR/train.log.
distill() {
  local dir=$1
  shift
  local cmd=("${CLI[@]}" distill --teacher "$TEACHER" --out "$dir" "${PRESET_ARGS[@]}" "$@" "${EXTRA[@]}")
  printf '%q ' "${cmd[@]}" | sed 's/ $//' >>"$dir/commands.txt"
  echo >>"$dir/commands.txt"
  "${cmd[@]}" >>"$dir/train.log" 2>&1
}

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
  distill "$dir" --stage forcing --steps "$FORCING_STEPS" "$@" && distill "$dir" --stage distill --steps "$DISTILL_STEPS" "$@"
}
rung_forcing() { forcing_then_distill "$1"; }
rung_uni() { forcing_then_distill "$1" --scan uni; }
rung_no-sa() { forcing_then_distill "$1" --layout "$NO_SA_LAYOUT"; }

# GenEval overall of the paper's ladder, for the summary table.
paper() {
  case $1 in
    teacher) echo 0.481 ;; scratch) echo 0.301 ;; teacher-init) echo 0.397 ;; pseudo) echo 0.452 ;;
    mixer) echo 0.462 ;; forcing) echo 0.485 ;; uni) echo 0.448 ;; no-sa) echo 0.420 ;; *) echo null ;;
  esac
}

now() { date +%s.%N; }

# True when FILE is a rung.json whose training and evaluation both succeeded.
rung_ok() {
  [[ -f $1 ]] && node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.exit(r.trainExitCode === 0 && r.evalExitCode === 0 ? 0 : 1)' "$1" 2>/dev/null
}

# Trains and evaluates one rung into OUT/<rung>/, ending with OUT/<rung>/rung.json.
run_rung() {
  local name=$1 dir=$OUT/$1
  if [[ ${RERUN:-0} != 1 ]] && rung_ok "$dir/rung.json"; then
    echo "[$name] kept ($dir/rung.json succeeded before; RERUN=1 to run it again)"
    return 0
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  : >"$dir/commands.txt"
  echo "[$name] training"
  local t0 t1 t2 rc=0 erc=0 model=$dir/model.safetensors
  t0=$(now)
  "rung_$name" "$dir" || rc=$?
  t1=$(now)
  [[ $name == teacher ]] && model=$TEACHER
  if ((rc == 0)); then
    echo "[$name] evaluating"
    local ecmd=("${CLI[@]}" eval --model "$model" --prompts "$PROMPTS" --steps "$EVAL_STEPS" --json "${EVAL_EXTRA[@]}")
    printf '%q ' "${ecmd[@]}" | sed 's/ $//' >"$dir/eval-command.txt"
    "${ecmd[@]}" >"$dir/eval.json" 2>"$dir/eval.log" || erc=$?
  fi
  t2=$(now)
  RUNG=$name DIR=$dir RC=$rc ERC=$erc T0=$t0 T1=$t1 T2=$t2 PAPER=$(paper "$name") \
    STEPS_TOTAL=$([[ $name == teacher ]] && echo 0 || echo "$STEPS") node -e '
    const fs = require("fs"); const e = process.env; const read = (f) => fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "";
    const commands = read(`${e.DIR}/commands.txt`).split("\n").filter(Boolean);
    let ev = null; try { ev = JSON.parse(read(`${e.DIR}/eval.json`)); } catch {}
    const last = read(`${e.DIR}/metrics.jsonl`).trim().split("\n").filter(Boolean).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean).pop();
    const r = {
      rung: e.RUNG, command: commands.join(" && "), commands, evalCommand: read(`${e.DIR}/eval-command.txt`).trim(),
      steps: Number(e.STEPS_TOTAL), trainExitCode: Number(e.RC), evalExitCode: Number(e.ERC),
      wallSeconds: +(e.T1 - e.T0).toFixed(2), evalSeconds: +(e.T2 - e.T1).toFixed(2), finalLoss: last?.loss ?? null,
      overall: ev?.overall ?? null, categories: ev?.categories ?? null, paperGenEval: e.PAPER === "null" ? null : Number(e.PAPER),
    };
    fs.writeFileSync(`${e.DIR}/rung.json`, JSON.stringify(r, null, 2) + "\n");'
  if ((rc != 0 || erc != 0)); then
    echo "[$name] FAILED (train exit $rc, eval exit $erc); see $dir/train.log and $dir/eval.log" >&2
    return 1
  fi
  echo "[$name] done: $(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(`overall ${r.overall}, ${r.wallSeconds} s training, ${r.evalSeconds} s eval`)' "$dir/rung.json")"
}

for r in "${RUNG_LIST[@]}"; do
  if ! declare -F "rung_$r" >/dev/null; then
    echo "ablation.sh: unknown rung '$r' in RUNGS; use teacher scratch teacher-init pseudo mixer forcing uni no-sa." >&2
    exit 2
  fi
done

failed=0
for r in "${RUNG_LIST[@]}"; do
  while (($(jobs -rp | wc -l) >= PARALLEL)); do wait -n || failed=1; done
  run_rung "$r" &
done
while (($(jobs -rp | wc -l) > 0)); do wait -n || failed=1; done

# The summary: every rung's rung.json in ladder order, plus the settings.
OUT=$OUT TEACHER=$TEACHER STEPS=$STEPS FORCING=$FORCING_STEPS PROMPTS=$PROMPTS EVAL_STEPS=$EVAL_STEPS PARALLEL=$PARALLEL \
  NO_SA=$NO_SA_LAYOUT LIST="${RUNG_LIST[*]}" node -e '
  const fs = require("fs"); const e = process.env;
  const rungs = e.LIST.split(" ").map((r) => { try { return JSON.parse(fs.readFileSync(`${e.OUT}/${r}/rung.json`, "utf8")); } catch { return { rung: r, overall: null, error: "no rung.json" }; } });
  const doc = {
    teacher: e.TEACHER, steps: Number(e.STEPS), forcingSteps: Number(e.FORCING), prompts: Number(e.PROMPTS),
    evalSteps: Number(e.EVAL_STEPS), parallel: Number(e.PARALLEL), noSaLayout: e.NO_SA, backend: e.T2MD_BACKEND ?? "auto",
    date: new Date().toISOString(), rungs,
  };
  fs.writeFileSync(`${e.OUT}/ablation.json`, JSON.stringify(doc, null, 2) + "\n");
  const f = (x) => (x == null ? "  -  " : x.toFixed(3));
  console.log("rung          ours   paper  train s");
  for (const r of rungs) console.log(`${r.rung.padEnd(12)}  ${f(r.overall)}  ${f(r.paperGenEval)}  ${r.wallSeconds ?? "-"}`);
  console.log(`wrote ${e.OUT}/ablation.json`);'
exit $failed
