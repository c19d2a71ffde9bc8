#!/usr/bin/env bash
# Issue 23 (long sequences that fit and fail loudly) on the GPU machine in ONE call of at most 540 s:
#
#   bash bench/pack.sh                                    # here, on a clean committed tree
#   # device (carry .gpu):
#   bash .gpu/run.sh bash bench/gpu-issue23.sh
#
# In order of importance, each step under what is left of the deadline (BUDGET s from the start,
# default 520: run.sh's set-up and the return of $OUT fit in the call's last minute):
#   1. t2md bench scaling at batch 1 and 2, 1,024 to 32,400 tokens, the library's defaults
#                                                         -> $OUT/scaling.json
#   2. t2md bench scan at L = 16,384: ssdScan's two WebGPU forwards (chunked, the default, and
#      segmented) side by side, each pass profiled      -> $OUT/scan.json
#      SCAN_TILES (e.g. 4x4,8x8) also times each of those GEMM micro-tiles (SsdScanOptions.gemmTile)
#      in the same process, each row naming its gemmTile; unset: the default tile alone.
# (The bounded pool and the segmented forward in the models were measured at 933f029 and answered:
# the pool limit is 2.6x slower with 68.7 GiB in use, the segmented forward no faster;
# bench/history/2026-12-07-h100-sixth/issue23/.)
# (2026-12-07's call, at 4a05dff, ran the batch-1 curve, bench train at batch 1024 and the early
# submit's A/B: bench/results/2026-12-07-h100*.json and bench/history/2026-12-07-h100-fourth/issue23/.)
# A step that cannot get its minimum time is skipped (logged); one that overruns its share is stopped.
# Every bench exits 1 when a point failed (its row holds the error and no timing); the next step runs.
# $OUT also gets issue23.log (each step's status and time, the device's used memory from nvidia-smi
# during it, the tail of its output) and logs.tgz (every step's stdout/stderr and the nvidia-smi trace,
# one line every 500 ms: timestamp, MiB used). Copy the JSON files into bench/results/ unedited.
#
# A dry run of the logic on SwiftShader (the benches fall back to their quick sizes on a software
# adapter; the sizes below then must be quick ones):
#   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json OUT=/tmp/i23 T2MD='node .gpu/gpu.mjs' \
#     SCALING_SIZES=64 SCAN_SIZES=256 ALLOW_DIRTY=1 bash bench/gpu-issue23.sh
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
BUDGET=${BUDGET:-520}
SCALING_SIZES=${SCALING_SIZES:-1024,4096,16384,32400}
SCALING_BATCHES=${SCALING_BATCHES:-1,2}
SCAN_SIZES=${SCAN_SIZES:-16384}
SCAN_TILES=${SCAN_TILES:-}
TILES=()
[ -n "$SCAN_TILES" ] && TILES=(--tiles "$SCAN_TILES")
DIRTY=()
[ "${ALLOW_DIRTY:-0}" = 1 ] && DIRTY=(--allow-dirty)
mkdir -p "$OUT"
L=$(mktemp -d)
LOG=$OUT/issue23.log
log() { echo "[$(date -u +%T) +${SECONDS}s] $*" | tee -a "$LOG"; }

# The device's used memory every 500 ms, for the whole call: what Dawn and the driver really hold,
# beside the bench's devicePeakMB (tfjs's allocations only).
MEM=$L/gpu-mem.csv
: >"$MEM"
SMI_PID=
if command -v nvidia-smi >/dev/null 2>&1; then
  log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
  nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 500 >"$MEM" 2>/dev/null &
  SMI_PID=$!
else
  log "no nvidia-smi: no device memory trace"
fi

# step NAME CAP MIN CMD...: runs CMD (stdout/stderr to $L/NAME.{out,err}) for at most CAP s and what is
# left of the budget (10 s kept for the end); skipped when less than MIN s are left.
step() {
  local name=$1 cap=$2 min=$3
  shift 3
  local left=$((BUDGET - SECONDS - 10))
  local t=$((left < cap ? left : cap))
  if [ "$t" -lt "$min" ]; then
    log "$name: skipped ($left s left, it needs $min)"
    return 0
  fi
  local from
  from=$(wc -l <"$MEM")
  local t0=$SECONDS
  timeout -k 10 "$t" "$@" >"$L/$name.out" 2>"$L/$name.err"
  local rc=$?
  local used
  used=$(tail -n +"$((from + 1))" "$MEM" | awk -F', *' '$2 + 0 > m { m = $2 + 0 } END { print m + 0 }')
  local why=""
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && why=" (stopped at its ${t} s)"
  log "$name: rc $rc in $((SECONDS - t0)) s$why; device memory.used max ${used} MiB"
  tail -n 30 "$L/$name.err" >>"$LOG" # the bench's progress lines and its final sentence
  return 0
}

# shellcheck disable=SC2086 # the command prefix is split on spaces on purpose
{
  step scaling 400 150 $T2MD bench scaling --backend webgpu --batches "$SCALING_BATCHES" --sizes "$SCALING_SIZES" \
    --out "$OUT/scaling.json" ${DIRTY[@]+"${DIRTY[@]}"}
  step scan 100 60 $T2MD bench scan --backend webgpu --sizes "$SCAN_SIZES" --out "$OUT/scan.json" ${TILES[@]+"${TILES[@]}"} \
    ${DIRTY[@]+"${DIRTY[@]}"}
}

[ -n "$SMI_PID" ] && kill "$SMI_PID" 2>/dev/null
tar -czf "$OUT/logs.tgz" -C "$L" .
log "done"
