#!/usr/bin/env bash
# Training throughput on the GPU machine in one call: `t2md bench train` (teacher and distillation
# steps, per-op GPU profile) and its PyTorch twin (bench/torch_train.py) on the same card, merged into
# one results file. Nothing else runs beside a timing.
#
#   bash bench/pack.sh            # a clean, committed tree: the bundle carries its commit
#   # device (carry .gpu):
#   BATCHES=128,512,1024 bash .gpu/run.sh bash bench/gpu-train-bench.sh
#
# $OUT/results.json (ours + PyTorch rows), $OUT/train.log.
set -uo pipefail
OUT=${OUT:?set OUT to the output folder}
T2MD=${T2MD:-node .gpu/gpu.mjs}
BATCHES=${BATCHES:-128,512,1024}
STEPS=${STEPS:-10}
R=$OUT/results.json
log() { echo "[$(date -u +%T)] $*" | tee -a "$OUT/train.log"; }
log "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
# (bench/gpu.ts creates Dawn with unquantised timestamps; T2MD_DAWN_FLAGS adds flags)
$T2MD bench train --backend webgpu --batches "$BATCHES" --steps "$STEPS" --out "$R" >>"$OUT/train.log" 2>&1
log "ours: rc $?"
python3 bench/torch_train.py --batches "$BATCHES" --steps "$STEPS" --json "$OUT/torch_train.json" >>"$OUT/train.log" 2>&1
log "torch: rc $?"
node bench/merge-baselines.mjs "$R" "$OUT/torch_train.json" >>"$OUT/train.log" 2>&1
log "done"
