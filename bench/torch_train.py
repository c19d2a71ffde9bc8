"""PyTorch twin of `t2md bench train`: the same two training steps on the same model shapes, timed the
same way (3 warm-up steps, then 3 blocks of N steps each ended by a synchronising loss read; the median
block's mean), so our WebGPU figures have a like-for-like baseline from the same call on the same card.

- teacher: the shapes preset's teacher (8 PixArt blocks 128 wide, 4 heads, 32x32 RGB at patch 2 = 256
  tokens, adaLN-single, cross-attention to a 16-token caption with a key mask, MLP ratio 4 with tanh
  GELU) and its 2-layer 128-wide caption encoder; eps-MSE with caption dropout 0.1 to the null caption,
  AdamW (wd 0.01) with the global-norm clip at 1, EMA 0.999; everything trains.
- distill: the frozen teacher's forward (no grad) with its per-block mixer outputs, then the hybrid
  student's (SA-HM-WM-HM-SA-WM-HM-WM; bidirectional Mamba-2, d_state 64, expand 2, head dim 32, chunk 64,
  concat merge) forward and backward with L_mse + 0.5 L_pseudo + 0.2 L_mixer; token mixers train.
  The SSD scan is the chunked algorithm in plain torch ops (packages/ssm/bench/torch_ssd.py), since
  mamba_ssm is not installed on the GPU machine.

Modes: f32 eager with TF32 off (the like-for-like baseline for our f32 WebGPU kernels) and bf16 autocast.
Data are tensors already on the GPU (images in [-1, 1], random tokens), so the twin times no data path.

  python3 bench/torch_train.py [--batches 128,512,1024] [--steps 10] [--modes f32,bf16] [--json FILE]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'packages', 'ssm', 'bench'))
from torch_ssd import ssd_chunked  # noqa: E402

D, HEADS, PATCH, CH, SIDE = 128, 4, 2, 3, 32
CAP_LEN, CAP_DIM, VOCAB, ENC_LAYERS, ENC_HEADS = 16, 128, 29, 2, 4
TEACHER = ['SA'] * 8
STUDENT = ['SA', 'HM', 'WM', 'HM', 'SA', 'WM', 'HM', 'WM']
D_STATE, EXPAND, HEADDIM, CHUNK, D_CONV = 64, 2, 32, 64, 4


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x, grid=None):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, n, D))


class CrossAttn(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D, D)
        self.kv = nn.Linear(D, 2 * D)
        self.proj = nn.Linear(D, D)

    def forward(self, x, y, mask):
        b, n, _ = x.shape
        q = self.q(x).view(b, n, HEADS, D // HEADS).transpose(1, 2)
        k, v = self.kv(y).view(b, y.shape[1], 2, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.proj(o.transpose(1, 2).reshape(b, n, D))


class BiMamba2(nn.Module):
    """Mamba-2 (rmsnorm, no biases) scanning the grid in one order and its reverse, concat-merged."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.d_inner = EXPAND * D
        self.nheads = self.d_inner // HEADDIM
        self.conv_dim = self.d_inner + 2 * D_STATE
        self.in_proj = nn.Linear(D, 2 * self.d_inner + 2 * D_STATE + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, D_CONV, groups=self.conv_dim, padding=D_CONV - 1)
        self.A_log = nn.Parameter(torch.log(torch.rand(self.nheads) * 15 + 1))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.dt_bias = nn.Parameter(torch.rand(self.nheads) * 0.1)
        self.norm_weight = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, D, bias=False)
        self.merge = nn.Linear(2 * D, D)

    def mamba(self, x):
        b, L, _ = x.shape
        zxbcdt = self.in_proj(x)
        z, xbc, dt = torch.split(zxbcdt, [self.d_inner, self.conv_dim, self.nheads], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :L].transpose(1, 2))
        xs, B, C = torch.split(xbc, [self.d_inner, D_STATE, D_STATE], dim=-1)
        y = ssd_chunked(xs.reshape(b, L, self.nheads, HEADDIM), dt, -torch.exp(self.A_log),
                        B.reshape(b, L, 1, D_STATE), C.reshape(b, L, 1, D_STATE), self.D, self.dt_bias, CHUNK)
        g = y.reshape(b, L, self.d_inner) * F.silu(z)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + 1e-5) * self.norm_weight
        return self.out_proj(g)

    def forward(self, x, grid):
        b, n, _ = x.shape
        h, w = grid
        if self.kind == 'HM':  # height-first: column-major order
            xs = x.view(b, h, w, D).transpose(1, 2).reshape(b, n, D)
        else:
            xs = x
        both = torch.cat([xs, xs.flip(1)], 0)
        ys = self.mamba(both)
        fwd, bwd = ys[:b], ys[b:].flip(1)
        cat = torch.cat([fwd, bwd], -1)
        if self.kind == 'HM':
            cat = cat.view(b, w, h, 2 * D).transpose(1, 2).reshape(b, n, 2 * D)
        return self.merge(cat)


class Block(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.mixer = Attn() if kind == 'SA' else BiMamba2(kind)
        self.cross = CrossAttn()
        self.fc1 = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)
        self.scale_shift_table = nn.Parameter(torch.randn(6, D) / D ** 0.5)

    def forward(self, x, t0, y, mask, grid, taps):
        sm, cm, gm, sp, cp, gp = (self.scale_shift_table[None] + t0).chunk(6, dim=1)
        m = self.mixer(modulate(F.layer_norm(x, (D,), eps=1e-6), sm, cm), grid)
        if taps is not None:
            taps.append(m)
        x = x + gm * m
        x = x + self.cross(x, y, mask)
        h = modulate(F.layer_norm(x, (D,), eps=1e-6), sp, cp)
        return x + gp * self.fc2(F.gelu(self.fc1(h), approximate='tanh'))


def timestep_features(t, dim=256):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class DiT(nn.Module):
    def __init__(self, layout):
        super().__init__()
        self.x_embed = nn.Conv2d(CH, D, PATCH, PATCH)
        self.t_mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.y_proj = nn.Sequential(nn.Linear(CAP_DIM, D), nn.GELU(approximate='tanh'), nn.Linear(D, D))
        self.register_buffer('y_embedding', torch.randn(CAP_LEN, CAP_DIM) / CAP_DIM ** 0.5)
        self.blocks = nn.ModuleList(Block(k) for k in layout)
        self.final_table = nn.Parameter(torch.randn(2, D) / D ** 0.5)
        self.final = nn.Linear(D, PATCH * PATCH * CH)
        g = SIDE // PATCH
        self.grid = (g, g)
        self.register_buffer('pos', torch.randn(1, g * g, D) * 0.02)

    def forward(self, x, t, y, mask, drop, taps=None):
        b = x.shape[0]
        h = self.x_embed(x).flatten(2).transpose(1, 2) + self.pos
        temb = self.t_mlp(timestep_features(t))
        t0 = self.t_block(temb).view(b, 6, D)
        y = torch.where(drop[:, None, None], self.y_embedding[None], y)
        mask = mask | drop[:, None]
        y = self.y_proj(y)
        for blk in self.blocks:
            h = blk(h, t0, y, mask, self.grid, taps)
        shift, scale = (self.final_table[None] + temb[:, None]).chunk(2, dim=1)
        o = self.final(modulate(F.layer_norm(h, (D,), eps=1e-6), shift, scale))
        g = self.grid[0]
        return o.view(b, g, g, PATCH, PATCH, CH).permute(0, 5, 1, 3, 2, 4).reshape(b, CH, SIDE, SIDE)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, CAP_DIM)
        self.pos = nn.Parameter(torch.randn(CAP_LEN, CAP_DIM) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(CAP_DIM, ENC_HEADS, 2 * CAP_DIM, dropout=0.0, activation='gelu',
                                       batch_first=True, norm_first=True) for _ in range(ENC_LAYERS))
        self.norm = nn.LayerNorm(CAP_DIM)

    def forward(self, tokens, mask):
        x = self.embed(tokens) + self.pos[None]
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return self.norm(x)


def alphas_cumprod(dev):
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64, device=dev)
    return torch.cumprod(1 - betas, 0).float()


class Step:
    """One training step of `which` at batch b (teacher: all weights; distill: the student's mixers)."""

    def __init__(self, which, b, dev):
        torch.manual_seed(0)
        self.which, self.b, self.dev = which, b, dev
        self.encoder = Encoder().to(dev)
        self.teacher = DiT(TEACHER).to(dev)
        if which == 'teacher':
            self.model = self.teacher
            params = list(self.model.parameters()) + list(self.encoder.parameters())
        else:
            self.model = DiT(STUDENT).to(dev)
            self.teacher.requires_grad_(False)
            self.encoder.requires_grad_(False)
            self.model.requires_grad_(False)  # only the token mixers train (as `trainable: 'mixers'`)
            params = [p for blk in self.model.blocks for p in blk.mixer.parameters()]
            for p in params:
                p.requires_grad_(True)
        self.params = params
        self.opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.01, fused=True)
        self.ema = [p.detach().clone() for p in params]
        self.ac = alphas_cumprod(dev)
        n = 8 * b  # a pool of data to cycle through
        self.x0 = torch.rand(n, CH, SIDE, SIDE, device=dev) * 2 - 1
        self.tokens = torch.randint(0, VOCAB, (n, CAP_LEN), device=dev)
        lens = torch.randint(3, CAP_LEN + 1, (n,), device=dev)
        self.mask = torch.arange(CAP_LEN, device=dev)[None] < lens[:, None]
        self.i = 0

    def __call__(self, autocast):
        b, sl = self.b, slice(self.i * self.b, (self.i + 1) * self.b)
        self.i = (self.i + 1) % 8
        x0, tokens, mask = self.x0[sl], self.tokens[sl], self.mask[sl]
        t = torch.randint(0, 1000, (b,), device=self.dev)
        drop = torch.rand(b, device=self.dev) < 0.1
        eps = torch.randn_like(x0)
        a = self.ac[t].view(b, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        with torch.autocast('cuda', dtype=torch.bfloat16, enabled=autocast):
            if self.which == 'teacher':
                y = self.encoder(tokens, mask)
                loss = F.mse_loss(self.model(xt, t, y, mask, drop).float(), eps)
            else:
                with torch.no_grad():
                    y = self.encoder(tokens, mask)
                    t_taps = []
                    t_eps = self.teacher(xt, t, y, mask, drop, t_taps)
                s_taps = []
                out = self.model(xt, t, y, mask, drop, s_taps).float()
                mixer = sum(F.mse_loss(s.float(), tt.float()) for s, tt in zip(s_taps, t_taps)) / len(s_taps)
                loss = F.mse_loss(out, eps) + 0.5 * F.mse_loss(out, t_eps.float()) + 0.2 * mixer
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1 - 0.999)
        return loss


def time_step(step, autocast, steps):
    for _ in range(3):
        step(autocast)
    torch.cuda.synchronize()
    blocks = []
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(autocast)
        loss.item()
        blocks.append((time.perf_counter() - t0) * 1e3 / steps)
    return sorted(blocks)[1], blocks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batches', default='128,512,1024')
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--modes', default='f32,bf16')
    ap.add_argument('--which', default='teacher,distill')
    ap.add_argument('--json')
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = 'cuda'
    rows = []
    for which in args.which.split(','):
        for b in (int(s) for s in args.batches.split(',')):
            step = Step(which, b, dev)
            for mode in args.modes.split(','):
                impl = 'torch-f32' if mode == 'f32' else 'torch-bf16-autocast'
                try:
                    ms, blocks = time_step(step, mode == 'bf16', args.steps)
                    rows.append(dict(step=which, batch=b, impl=impl, preset='shapes', msPerStep=round(ms, 3),
                                     samplesPerSec=round(1000 * b / ms, 1), steps=args.steps,
                                     blocksMs=[round(x, 3) for x in blocks]))
                except torch.cuda.OutOfMemoryError as e:
                    rows.append(dict(step=which, batch=b, impl=impl, preset='shapes', msPerStep=None, error=str(e)[:160]))
                    torch.cuda.empty_cache()
                print(json.dumps(rows[-1]), flush=True)
            del step
            torch.cuda.empty_cache()
    out = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, tf32=False, train=rows)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=2)


if __name__ == '__main__':
    main()
