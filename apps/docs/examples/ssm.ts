// Mamba-2's SSD scan and Mamba-1's selective scan as ops with gradients, a Mamba-2 mixer, and the
// bidirectional mixer T2MD puts in its DiT blocks, scanning a token grid height-first.

import { initBackend, Rng } from '@t2md/core';
import { BidirectionalMamba, Mamba2Mixer, scanPermutation, selectiveScan, ssdScan } from '@t2md/ssm';
import * as tf from '@tensorflow/tfjs-core';

await initBackend();
const rng = new Rng(0);
const [batch, L, H, P, N] = [1, 100, 4, 16, 32]; // any L works, not only multiples of the chunk size

// y_t = C_t · state_t + D x_t, state_t = exp(dt_t A) state_{t-1} + dt_t x_t B_tᵀ (mamba_chunk_scan_combined)
const x = rng.randn([batch, L, H, P]);
const dt = rng.rand([batch, L, H], 0.01, 0.1);
const A = tf.neg(rng.rand([H], 1, 4));
const B = rng.randn([batch, L, 1, N]);
const C = rng.randn([batch, L, 1, N]);
const { y, finalStates } = ssdScan({ x, dt, A, B, C }, { chunkSize: 32, returnFinalStates: true });
console.log('ssdScan', y.shape, finalStates?.shape); // [1, 100, 4, 16] [1, 4, 16, 32]

// Differentiable in every float input.
const [dx, dB] = tf.grads((xi: tf.Tensor, Bi: tf.Tensor) => tf.sum(ssdScan({ x: xi, dt, A, B: Bi, C }).y))([x, B]);
console.log('gradients', dx.shape, dB.shape);

// Mamba-1: u, delta [batch, dim, L]; A [dim, dstate]; B, C [batch, dstate, L].
const u = rng.randn([batch, 8, L]);
const sel = selectiveScan(
  {
    u,
    delta: rng.rand([batch, 8, L], 0.01, 0.1),
    A: tf.neg(rng.rand([8, 16], 1, 4)),
    B: rng.randn([batch, 16, L]),
    C: rng.randn([batch, 16, L]),
  },
  { returnLastState: true },
);
console.log('selectiveScan', sel.y.shape, sel.lastState?.shape); // [1, 8, 100] [1, 8, 16]

// A Mamba-2 mixer over tokens [batch, L, dModel] ...
const mixer = new Mamba2Mixer({ dModel: 64, dState: 32, headdim: 16 }, rng);
const tokens = rng.randn([2, 64, 64]);
console.log('Mamba2Mixer', mixer.apply(tokens).shape); // [2, 64, 64]

// ... and T2MD's bidirectional one over an 8×8 token grid, scanned height-first (HM) both ways.
const hm = new BidirectionalMamba({ dModel: 64, dState: 32, headdim: 16, order: 'HM' }, rng);
console.log('BidirectionalMamba', hm.apply(tokens, [8, 8]).shape); // [2, 64, 64]
console.log('HM visits', Array.from(scanPermutation('HM', 8, 8).perm.slice(0, 10))); // 0, 8, 16, ...

mixer.dispose();
hm.dispose();
tf.dispose([x, dt, A, B, C, y, dx, dB, u, sel.y, tokens]);
if (finalStates) finalStates.dispose();
if (sel.lastState) sel.lastState.dispose();
