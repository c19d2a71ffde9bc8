import { InputError } from '@t2md/core';
import { describe, expect, it } from 'vitest';
import { alphasCumprod, betas, resolveSchedule, trailingTimesteps } from './schedule.js';

describe('schedules', () => {
  it('linear: DDPM betas from 1e-4 to 0.02 by default, alpha-bar the running product', () => {
    const b = betas();
    expect(b.length).toBe(1000);
    expect(b[0]).toBeCloseTo(1e-4, 12);
    expect(b[999]).toBeCloseTo(0.02, 12);
    expect(b[500] - b[499]).toBeCloseTo((0.02 - 1e-4) / 999, 12);
    const ab = alphasCumprod();
    let acc = 1;
    for (let i = 0; i < 1000; i++) acc *= 1 - b[i];
    expect(ab[999]).toBeCloseTo(acc, 15);
    expect(ab[999]).toBeGreaterThan(3e-5); // the well-known 4.0e-5 of DDPM's schedule
    expect(ab[999]).toBeLessThan(5e-5);
  });

  it('scaled-linear is linear in sqrt(beta) (diffusers scaled_linear alias accepted)', () => {
    const cfg = { kind: 'scaled_linear' as never, betaStart: 0.00085, betaEnd: 0.012, trainSteps: 1000 };
    const b = betas(cfg);
    expect(Math.sqrt(b[0])).toBeCloseTo(Math.sqrt(0.00085), 12);
    expect(Math.sqrt(b[999])).toBeCloseTo(Math.sqrt(0.012), 12);
    expect(Math.sqrt(b[2]) - Math.sqrt(b[1])).toBeCloseTo(Math.sqrt(b[1]) - Math.sqrt(b[0]), 12);
    expect(resolveSchedule(cfg).kind).toBe('scaled-linear');
  });

  it('cosine telescopes to f((t+1)/T)/f(0) with f(u) = cos^2((u + 0.008)/1.008 pi/2), capped at beta 0.999', () => {
    const f = (u: number) => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    const ab = alphasCumprod({ kind: 'cosine', trainSteps: 1000 });
    for (const t of [0, 10, 500, 900, 990]) expect(ab[t]).toBeCloseTo(f((t + 1) / 1000) / f(0), 10);
    expect(betas({ kind: 'cosine' })[999]).toBe(0.999);
    expect(resolveSchedule({ kind: 'squaredcos_cap_v2' as never }).kind).toBe('cosine');
  });

  it('rejects unknown kinds and bad betas/trainSteps with an InputError naming the field', () => {
    expect(() => betas({ kind: 'sigmoid' as never })).toThrow(InputError);
    expect(() => betas({ kind: 'sigmoid' as never })).toThrow(
      /schedule.kind must be one of 'linear', 'scaled-linear', 'cosine', got "sigmoid"/,
    );
    expect(() => betas({ betaStart: 0 })).toThrow(/schedule.betaStart must be a number in \(0, 1\)/);
    expect(() => betas({ betaStart: 0.1, betaEnd: 0.01 })).toThrow(/must not exceed schedule.betaEnd/);
    expect(() => betas({ trainSteps: 10.5 })).toThrow(/schedule.trainSteps must be an integer/);
  });
});

describe('trailing timestep spacing', () => {
  it('starts at T - 1 and steps by T/steps (numpy rounding, half to even)', () => {
    expect(trailingTimesteps(1000, 10)).toEqual([999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
    expect(trailingTimesteps(1000, 3)).toEqual([999, 666, 332]);
    expect(trailingTimesteps(1000, 1)).toEqual([999]);
    // 1000/16 = 62.5: 937.5 -> 938, 812.5 -> 812 (half to even), as np.round does
    const t16 = trailingTimesteps(1000, 16);
    expect(t16.slice(0, 4)).toEqual([999, 937, 874, 811]);
    const all = trailingTimesteps(1000, 1000);
    expect(all[0]).toBe(999);
    expect(all[999]).toBe(0);
    for (const steps of [7, 333, 999]) {
      const ts = trailingTimesteps(1000, steps);
      expect(ts[0]).toBe(999);
      for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeLessThan(ts[i - 1]);
      expect(ts[ts.length - 1]).toBeGreaterThanOrEqual(0);
    }
  });

  it('rejects steps < 1, > trainSteps or fractional', () => {
    for (const steps of [0, -3, 1001, 2.5, Number.NaN]) {
      expect(() => trailingTimesteps(1000, steps)).toThrow(InputError);
    }
    expect(() => trailingTimesteps(1000, 1001)).toThrow(/steps must be an integer in \[1, 1000\] \(the schedule's trainSteps\), got 1001/);
  });
});
