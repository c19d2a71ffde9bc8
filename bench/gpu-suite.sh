#!/usr/bin/env bash
# The whole benchmark on the GPU machine in one call, in this order so that nothing else runs beside a
# timing: the kernels (each variant in one process), the PyTorch baselines of the same computations,
# then the scaling curve with the library's defaults (its rows record the GEMM setting in force).
#
#   bash bench/pack.sh                                    # here, once per commit: bundle + source stamp
#   # device (carry .gpu):
#   bash .gpu/run.sh bash bench/gpu-suite.sh
# or split over two calls (each has 10 minutes): BENCHES="matmul elementwise scan attention", then
#   BENCHES=scaling TORCH=0 RESULTS_IN=<the first call's results.json, carried>
# Every row records the commit the bundle was packed from; a bundle packed from a dirty tree is refused
# unless ALLOW_DIRTY=1 (the rows then say dirty: true). Copy results.json into bench/results/ unedited.
#
# Everything lands in $OUT (the device tool returns at most 8 files): results.json (the merged results
# file, baselines included), suite.log, and logs.tgz (each step's stdout/stderr).
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
BENCHES=${BENCHES:-matmul elementwise scan attention scaling}
TORCH=${TORCH:-1}
DIRTY=()
[ "${ALLOW_DIRTY:-0}" = 1 ] && DIRTY=(--allow-dirty)
R=$OUT/results.json
# A suite split over calls (one call has 10 minutes) continues the file an earlier call returned.
[ -n "${RESULTS_IN:-}" ] && cp "$RESULTS_IN" "$R"
L=$(mktemp -d)
log() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/suite.log"; }

step() { # step NAME CMD... : runs CMD with stdout/stderr to $L/NAME.{out,err}, logs its status and time
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$L/$name.out" 2>"$L/$name.err"
  local rc=$?
  log "$name: rc $rc in $((SECONDS - t0)) s"
  tail -n 40 "$L/$name.out" >>"$OUT/suite.log"
  [ $rc -eq 0 ] || tail -n 20 "$L/$name.err" >>"$OUT/suite.log"
  return 0
}

log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
for b in $BENCHES; do
  [ "$b" = scaling ] && continue
  # shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
  step "$b" $T2MD bench "$b" --out "$R" ${DIRTY[@]+"${DIRTY[@]}"}
done
if [ "$TORCH" = 1 ]; then
  step torch_kernels python3 bench/torch_kernels.py --json "$L/torch_kernels.json"
  step torch_ssd python3 packages/ssm/bench/torch_ssd.py --json "$L/torch_ssd.json"
  step torch_attention python3 packages/dit/bench/torch_attention.py --json "$L/torch_attention.json"
fi
# shellcheck disable=SC2086 # the command prefix / flag string is split on spaces on purpose
[[ " $BENCHES " == *" scaling "* ]] && step scaling $T2MD bench scaling --out "$R" ${DIRTY[@]+"${DIRTY[@]}"}
[ "$TORCH" = 1 ] && node bench/merge-baselines.mjs "$R" "$L"/torch_*.json >>"$OUT/suite.log" 2>&1
tar -czf "$OUT/logs.tgz" -C "$L" .
log "done"
