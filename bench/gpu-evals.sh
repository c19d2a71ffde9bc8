#!/usr/bin/env bash
# Scores model files on the GPU machine after a training call, into ONE file (the device tool returns at
# most 8): $OUT/evals.jsonl, a line per eval, `t2md eval --json` plus the settings that made it.
#
#   bash .gpu/run.sh bash bench/gpu-evals.sh teacher:new=$OUT/teacher.safetensors student:a=PATH ...
#
# Per ROLE:LABEL=FILE (ROLE is teacher or student, the file's slot in packages/shapes/models/):
# - `t2md eval --prompts 200 --seed S` for S in SEEDS (default 0,1,2,3; 20 steps, eval's defaults);
# - the step-table rows: --seed 0 at each of TABLE_STEPS (default 8,10,12, empty for none; the 20-step row is the
#   seed-0 eval above, same settings), which `node bench/step-table.mjs --rows evals.jsonl` turns into
#   sampling.json here, without running the evals again on a CPU.
# Each line also has wallS, the eval's seconds with model loading (what a call plans its time by).
# SIZE, when set, is every eval's --size in px (unset: eval's default, the size the model was trained
# at): SIZE=64 TABLE_STEPS= scores the 64-px side (the models issue's adapt/finetune target); give such
# rows their own LABEL, since step-table.mjs --rows picks rows by label.
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
SEEDS=${SEEDS:-0,1,2,3}
TABLE_STEPS=${TABLE_STEPS-8,10,12} # set and empty: no step-table rows
SIZE=${SIZE:-}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
fail=0

one() { # one ROLE LABEL FILE SEED STEPS
  local report t0
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086 # the command prefix is split on spaces on purpose
  if ! report=$($T2MD eval --model "$3" --prompts 200 --json --seed "$4" --steps "$5" ${SIZE:+--size "$SIZE"} --sampler dpmpp-2m --cfg 4.5 --batch 25 --backend webgpu); then
    echo "gpu-evals: eval of $2 ($3) at seed $4, $5 steps${SIZE:+, $SIZE px} failed" >&2
    fail=1
    return
  fi
  node -e '
    const [role, label, seed, steps, card, sha256, t0, report] = process.argv.slice(1);
    const r = JSON.parse(report);
    // wallS: the whole eval command, model loading included (what a call plans its time by)
    const wallS = Math.round((Date.now() / 1000 - Number(t0)) * 10) / 10;
    const line = { role, label, seed: Number(seed), steps: Number(steps), sampler: "dpmpp-2m", cfg: 4.5, batch: 25, backend: "webgpu", card, sha256, wallS, ...r };
    process.stdout.write(JSON.stringify(line) + "\n");' "$1" "$2" "$4" "$5" "$card" "$(sha256sum "$3" | cut -c1-64)" "$t0" "$report" | tee -a "$OUT/evals.jsonl"
}

for spec in "$@"; do
  role=${spec%%:*}
  rest=${spec#*:}
  label=${rest%%=*}
  file=${rest#*=}
  case "$role" in teacher | student) ;; *)
    echo "gpu-evals: '$spec' must be ROLE:LABEL=FILE with ROLE teacher or student" >&2
    exit 2
    ;;
  esac
  [ -f "$file" ] || { echo "gpu-evals: $file does not exist (from '$spec')" >&2; fail=1; continue; }
  for s in ${SEEDS//,/ }; do one "$role" "$label" "$file" "$s" 20; done
  for n in ${TABLE_STEPS//,/ }; do one "$role" "$label" "$file" 0 "$n"; done
done
exit $fail
