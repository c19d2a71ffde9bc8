/**
 * Bytes a selective scan must move at least (float32): every input read once and every output
 * written once. Divide by the measured time for an effective GB/s that compares across chunk sizes.
 */
export function selectiveScanTraffic(
  dims: { batch: number; dim: number; seqlen: number; dstate: number; ngroups?: number },
  opts: { hasD?: boolean; hasZ?: boolean; hasDeltaBias?: boolean; returnLastState?: boolean } = {},
): number {
  const { batch, dim, seqlen, dstate, ngroups = 1 } = dims;
  const bdl = batch * dim * seqlen;
  let floats = 3 * bdl + dim * dstate + 2 * batch * ngroups * dstate * seqlen; // u, delta, y; A; B, C
  if (opts.hasZ) floats += bdl;
  if (opts.hasD) floats += dim;
  if (opts.hasDeltaBias) floats += dim;
  if (opts.returnLastState) floats += batch * dim * dstate;
  return 4 * floats;
}
