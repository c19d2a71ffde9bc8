import { flatDispatch, type WebGPUProgramSpec } from '@t2md/core';

const WG = 64;

/** ω_k = maxPeriod^(−k / half) for k < half, in float64 (DiT's `timestep_embedding` frequencies). */
export function frequencies(half: number, maxPeriod: number): Float64Array {
  return Float64Array.from({ length: half }, (_, k) => Math.exp((-Math.log(maxPeriod) * k) / half));
}

/** v rounded to 12 significant bits: the product of two such numbers is exact in float32 (24 bits). */
function round12(v: number): number {
  if (v === 0) return 0;
  const s = 2 ** (11 - Math.floor(Math.log2(Math.abs(v))));
  return Math.round(v * s) / s;
}

/** A WGSL `array<f32, n>` literal of float32 values. */
function wgslArray(values: number[]): string {
  return `array<f32, ${values.length}>(${values.map((v) => Math.fround(v).toPrecision(17)).join(', ')})`;
}

/**
 * Sinusoidal timestep features `[N, 2·half]` = [cos(t·ω_k), sin(t·ω_k)] from t `[N]`, accurate to a few
 * float32 ulps for any float32 t (against the exact value of the float32 t).
 *
 * WGSL's `sin`/`cos` carry no accuracy guarantee: SwiftShader's are off by 2e-4 even inside [−π, π],
 * and at t·ω of hundreds of radians each adapter's range reduction differs (the whole DiT output moved
 * by 2e-4 relative on SwiftShader). So the angle is reduced here in turns, exactly: ν_k = ω_k / 2π is
 * split on the host into 12-bit parts ν_hi + ν_mid + ν_lo, and t in the shader into 12-bit t_hi (its
 * bits masked) + t_lo. The products t_hi·ν_hi, t_hi·ν_mid and t_lo·ν_hi are then exact in float32, so
 * is each one's distance to its nearest integer, and only their sum (kept within half a turn) rounds. The quadrant comes off exactly, and sin and cos of the remaining |x| ≤ π/4 are polynomials
 * (Taylor to x⁹ and x¹⁰: truncation below 2e-9). Fused multiply-adds anywhere only help: every
 * product that must be exact already is.
 */
export class TimestepFeaturesProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  variableNames = ['ts'];
  uniforms = 'pairs : i32,';

  constructor(
    n: number,
    private readonly half: number,
    private readonly maxPeriod: number,
  ) {
    this.outputShape = [n, 2 * half];
    this.dispatchLayout = { x: [0, 1] };
    this.dispatch = flatDispatch(n * half, WG);
    this.shaderKey = `t2md_timestep_features_${half}_${maxPeriod}`;
  }

  getUserCode(): string {
    const nu = Array.from(frequencies(this.half, this.maxPeriod), (w) => w / (2 * Math.PI));
    const hi = nu.map(round12);
    const mid = nu.map((v, k) => round12(v - hi[k]!));
    const lo = nu.map((v, k) => v - hi[k]! - mid[k]!);
    const H = this.half;
    return `
const NU_HI = ${wgslArray(hi)};
const NU_MID = ${wgslArray(mid)};
const NU_LO = ${wgslArray(lo)};

// x minus its nearest integer: exact for every float32 x
fn centred(x : f32) -> f32 { return x - round(x); }

fn main(index : i32) {
  if (index < uniforms.pairs) {
    let n = index / ${H};
    let k = index - n * ${H};
    let t = getTs(n); // the getter converts: an int32 tensor cast to float32 keeps its i32 buffer on webgpu
    let tHi = bitcast<f32>(bitcast<u32>(t) & 0xfffff000u);
    let tLo = t - tHi;
    let nuHi = NU_HI[k];
    // the angle in turns, smallest terms first, kept within half a turn so each addition rounds by
    // at most 2^-25 turn (for t < 1024 the first two are below 0.04 and barely round at all)
    var r = centred((tLo * NU_MID[k] + t * NU_LO[k]) + centred(tLo * nuHi));
    r = centred(r + centred(tHi * NU_MID[k]));
    r = centred(r + centred(tHi * nuHi));
    let q = round(4.0 * r);
    let x = (r - 0.25 * q) * 6.283185307179586;
    let x2 = x * x;
    let s = x * (1.0 + x2 * (-1.6666666666666666e-1 + x2 * (8.3333333333333333e-3 + x2 * (-1.9841269841269841e-4 + x2 * 2.7557319223985891e-6))));
    let c = 1.0 + x2 * (-0.5 + x2 * (4.1666666666666667e-2 + x2 * (-1.3888888888888889e-3 + x2 * (2.4801587301587302e-5 - x2 * 2.7557319223985891e-7))));
    // angle = q·π/2 + x
    let quadrant = i32(q) & 3;
    var cv = c;
    var sv = s;
    if (quadrant == 1) { cv = -s; sv = c; }
    if (quadrant == 2) { cv = -c; sv = -s; }
    if (quadrant == 3) { cv = s; sv = -c; }
    result[n * ${2 * H} + k] = cv;
    result[n * ${2 * H} + ${H} + k] = sv;
  }
}`;
  }
}
