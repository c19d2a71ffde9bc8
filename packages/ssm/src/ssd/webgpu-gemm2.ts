/**
 * The v2 GEMM generator of the SSD passes: the same loaders as v1's `GemmProgram` (a `GemmBody`), with
 * a configurable register tile. v1 gives each of 256 threads a 4×4 micro-tile of a 64×64 block: per
 * 16-deep K step a thread issues 16 FMAs per 8 workgroup-memory vec4 reads and the whole block does
 * 2048 guarded global loads for 64K FMAs, so the H100 ran the heavy passes at ~10 TFLOP/s.
 * An 8×8 micro-tile doubles FMAs per shared read (64 per 4 vec4 reads), and a 64×128 block halves the
 * loads per FMA of the wide states GEMM; expected ~1.5-2× on the two heavy forward passes.
 *
 * Thread (tx, ty) owns rows m = i·4·TY + 4·ty + r and columns n = j·4·TX + 4·tx + c (i < TM/4, j < TN/4,
 * r, c < 4): the interleave keeps a warp's vec4 reads of the B tile on consecutive addresses.
 */
import type { WebGPUProgramSpec } from '@t2md/core';
import type { GemmTile } from './variant.js';
import { type GemmBody, type GemmPhase, type GemmSize, SSD_UNIFORMS, SSD_WID, ssdPrelude, ssdTouch } from './webgpu-programs.js';

export type { GemmTile } from './variant.js';

export class TiledGemmProgram implements WebGPUProgramSpec {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = SSD_UNIFORMS;
  variableNames: string[];
  readonly tiles: { M: number; N: number; Tm: number; Tn: number; Tot: number };
  private readonly body: GemmBody;
  private readonly t: GemmTile;

  constructor(key: string, vars: string[], outputShape: number[], size: GemmSize, body: GemmBody, tile: GemmTile) {
    const { bm, bn, tm, tn, bk } = tile;
    const threads = (bm / tm) * (bn / tn);
    if (tm % 4 || tn % 4 || (bm * bk) % threads || (bn * bk) % threads)
      throw new Error(`TiledGemmProgram: bad tile ${JSON.stringify(tile)}`);
    // the tile is baked into the WGSL: it is part of the key
    this.shaderKey = `t2md_ssd_gemm2_${key}_${bm}x${bn}_${tm}x${tn}_${bk}`;
    this.variableNames = vars;
    this.outputShape = outputShape;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.workgroupSize = [threads, 1, 1];
    const Tm = Math.ceil(size.M / bm);
    const Tn = Math.ceil(size.N / bn);
    this.tiles = { M: size.M, N: size.N, Tm, Tn, Tot: Tm * Tn * size.batch };
    this.dispatch = [this.tiles.Tot, 1, 1];
    this.body = body;
    this.t = tile;
  }

  getUserCode(): string {
    const { bm, bn, tm, tn, bk } = this.t;
    const TX = bn / tn;
    const TY = bm / tm;
    const threads = TX * TY;
    const RI = tm / 4;
    const CJ = tn / 4;
    const { batchDecl, tileLive, phases, epilogue } = this.body;
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    const cells = range(RI).flatMap((i) => range(4).flatMap((r) => range(CJ).map((j) => ({ i, r, j }))));
    const name = (pre: string, c: { i: number; r: number; j: number }) => `${pre}${c.i}_${c.r}_${c.j}`;
    const decl = (pre: string) => cells.map((c) => `var ${name(pre, c)} = vec4<f32>(0.0);`).join(' ');
    const rowOf = (i: number, r: number) => `${i * 4 * TY} + ty * 4 + ${r}`;
    const colOf = (j: number, c: string) => `${j * 4 * TX} + tx * 4 + ${c}`;

    const load = (which: 'A' | 'B', p: GemmPhase) => {
      const big = which === 'A' ? bm : bn;
      const contiguousOuter = which === 'A' ? p.aLayout === 'km' : p.bLayout === 'kn';
      const [v, lim, expr, tileName, o0] = which === 'A' ? ['m', 'gM', p.a, 'As', 'm0'] : ['n', 'gN', p.b, 'Bs', 'n0'];
      // a loop, not unrolled text: SwiftShader's compiler ran out of memory on 16 inlined copies per tile
      const idx = contiguousOuter ? [`e % ${big}`, `e / ${big}`] : [`e / ${bk}`, `e % ${bk}`];
      return `for (var q = 0; q < ${(big * bk) / threads}; q++) {
            let e = lid + ${threads} * q;
            let oo = ${idx[0]};
            let kk = ${idx[1]};
            let ${v} = ${o0} + oo;
            let kl = k0 + kk;
            var v = 0.0;
            if (${v} < uniforms.${lim} && kl < kEnd) { let k = s * segLen + kl; v = ${expr}; }
            ${tileName}[kk * ${big / 4} + (oo >> 2)][oo & 3] = v;
          }`;
    };
    const fma = (pre: string) => `for (var kk = 0; kk < ${bk}; kk++) {
            ${range(RI)
              .map((i) => `let a${i} = As[kk * ${bm / 4} + ${i * TY} + ty];`)
              .join(' ')}
            ${range(CJ)
              .map((j) => `let b${j} = Bs[kk * ${bn / 4} + ${j * TX} + tx];`)
              .join(' ')}
            ${cells.map((c) => `${name(pre, c)} += a${c.i}.${'xyzw'[c.r]} * b${c.j};`).join('\n            ')}
          }`;
    const phase = (p: GemmPhase) => {
      const pre = p.scale ? 'p' : 'acc';
      const scaled = p.scale
        ? cells
            .map(
              (c) => `{ let m = m0 + ${rowOf(c.i, c.r)};
          for (var cc = 0; cc < 4; cc++) {
            let n = n0 + ${colOf(c.j, 'cc')};
            if (live && m < uniforms.gM && n < uniforms.gN) { ${name('acc', c)}[cc] += (${p.scale}) * ${name('p', c)}[cc]; }
          } }`,
            )
            .join('\n')
        : '';
      return `{
      let kBeg = ${p.kBeg ?? '0'};
      let segLen = ${p.segLen ?? '0'};
      let kEnd = ${p.kEnd ?? p.kMax};
      for (var s = 0; s < ${p.nseg ?? '1'}; s++) {
        ${p.segDecl ?? ''}
        ${p.scale ? decl('p') : ''}
        for (var k0 = 0; k0 < ${p.kMax}; k0 += ${bk}) {
          let act = live && k0 + ${bk} > kBeg && k0 < kEnd;
          if (act) {
            ${load('A', p)}
            ${load('B', p)}
          }
          workgroupBarrier();
          if (act) {
            ${fma(pre)}
          }
          workgroupBarrier();
        }
        ${scaled}
      }
    }`;
    };
    const epi = cells
      .map(
        (c) => `{ let m = m0 + ${rowOf(c.i, c.r)};
      if (m < uniforms.gM) {
        for (var cc = 0; cc < 4; cc++) {
          let n = n0 + ${colOf(c.j, 'cc')};
          if (n < uniforms.gN) { let v = ${name('acc', c)}[cc]; ${epilogue} }
        }
      } }`,
      )
      .join('\n');
    return `${ssdPrelude(this.variableNames)}
var<workgroup> As : array<vec4<f32>, ${(bk * bm) / 4}>;
var<workgroup> Bs : array<vec4<f32>, ${(bk * bn) / 4}>;
fn main(index : i32) {
  ${ssdTouch(this.variableNames)}
  let lid = i32(localIndex);
  let wid = ${SSD_WID};
  let tn = wid % uniforms.gTn;
  let tm = (wid / uniforms.gTn) % uniforms.gTm;
  let bat = min(wid / (uniforms.gTn * uniforms.gTm), uniforms.gTot / (uniforms.gTn * uniforms.gTm) - 1);
  let m0 = tm * ${bm};
  let n0 = tn * ${bn};
  let tx = lid % ${TX};
  let ty = lid / ${TX};
  ${batchDecl}
  let live = wid < uniforms.gTot && (${tileLive ?? 'true'});
  ${decl('acc')}
  ${phases.map(phase).join('\n')}
  if (live) {
    ${epi}
  }
}`;
  }
}
