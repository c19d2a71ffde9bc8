#!/usr/bin/env bash
# Bundles bench/gpu.ts for the GPU machine (../shared/device/pack.sh) with a stamp of the source it was
# built from: the commit and whether the tree differed from it, from git, here. The bundle hands the
# stamp to `t2md bench`, which records it on every row (a dirty stamp is refused there unless
# --allow-dirty). Run from the repository root:  bash bench/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
commit=$(git rev-parse HEAD)
dirty=false
[ -n "$(git status --porcelain)" ] && dirty=true
printf '{"commit": "%s", "dirty": %s}\n' "$commit" "$dirty" > bench/.source-stamp.json
echo "pack: source ${commit:0:10}$([ "$dirty" = true ] && echo ' (dirty: the tree differs from it)')"
bash ../shared/device/pack.sh bench/gpu.ts
