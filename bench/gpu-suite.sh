#!/usr/bin/env bash
# The whole benchmark on the GPU machine in one call, in this order so that nothing else runs beside a
# timing: the kernels (each variant in one process), the PyTorch baselines of the same computations,
# then the scaling curve with the fastest matmul variant the kernel bench found.
#
#   bash ../shared/device/pack.sh bench/gpu.ts            # here, once per commit
#   # device (carry .gpu):
#   T2MD_COMMIT=<sha> bash .gpu/run.sh bash bench/gpu-suite.sh
# or split over two calls (each has 10 minutes): BENCHES="matmul elementwise scan attention", then
#   BENCHES=scaling TORCH=0 RESULTS_IN=<the first call's results.json, carried>
#
# Everything lands in $OUT (the device tool returns at most 8 files): results.json (the merged results
# file, baselines included), suite.log, and logs.tgz (each step's stdout/stderr).
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
BENCHES=${BENCHES:-matmul elementwise scan attention scaling}
TORCH=${TORCH:-1}
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
  if [ "$b" = scan ]; then T2MD_SSD_PROFILE=1 step scan $T2MD bench scan --out "$R"; else step "$b" $T2MD bench "$b" --out "$R"; fi
  # the GEMM's inner-loop unrolling is a second knob: its rows merge beside the default's (key: unroll)
  [ "$b" = matmul ] && T2MD_MATMUL_UNROLL=4 T2MD_BENCH_SIZES=16384 step matmul-unroll4 $T2MD bench matmul --out "$R"
done
if [ "$TORCH" = 1 ]; then
  step torch_kernels python3 bench/torch_kernels.py --json "$L/torch_kernels.json"
  step torch_ssd python3 packages/ssm/bench/torch_ssd.py --json "$L/torch_ssd.json"
  step torch_attention python3 packages/dit/bench/torch_attention.py --json "$L/torch_attention.json"
fi
if [[ " $BENCHES " == *" scaling "* ]]; then
  if [ -z "${T2MD_MATMUL:-}" ] && [ -f "$R" ]; then
    # The fastest of tfjs, t64, t128 and auto (each row's autoPick) by total ms over the bench's shapes
    # (a failed row counts as ∞); the table of every variant stays in results.json.
    T2MD_MATMUL=$(node -e '
      const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const rows = d.matmul ?? [];
      const ms = (r) => (r.ms == null ? Infinity : r.ms);
      const tot = {};
      for (const r of rows) {
        tot[`${r.variant} ${r.unroll}`] = (tot[`${r.variant} ${r.unroll}`] ?? 0) + ms(r);
        if (r.variant === r.autoPick) tot[`auto ${r.unroll}`] = (tot[`auto ${r.unroll}`] ?? 0) + ms(r);
      }
      const best = Object.entries(tot).sort((a, b) => a[1] - b[1])[0];
      process.stderr.write(JSON.stringify(tot) + "\n");
      process.stdout.write(best ? best[0] : "auto 16");' "$R" 2>>"$OUT/suite.log")
    T2MD_MATMUL_UNROLL=${T2MD_MATMUL#* }
    T2MD_MATMUL=${T2MD_MATMUL% *}
    export T2MD_MATMUL T2MD_MATMUL_UNROLL
  fi
  log "scaling with T2MD_MATMUL=${T2MD_MATMUL:-default} T2MD_MATMUL_UNROLL=${T2MD_MATMUL_UNROLL:-default}"
  step scaling $T2MD bench scaling --out "$R"
fi
[ "$TORCH" = 1 ] && node bench/merge-baselines.mjs "$R" "$L"/torch_*.json >>"$OUT/suite.log" 2>&1
tar -czf "$OUT/logs.tgz" -C "$L" .
log "done"
