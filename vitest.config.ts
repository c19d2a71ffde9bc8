import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One root config; each package is a project. WebGPU tests run on whatever adapter initBackend finds
// (SwiftShader in CI); T2MD_REQUIRE_WEBGPU=1 turns a missing adapter into a failure instead of a skip.
const packages = ['core', 'ssm', 'dit', 'sampler', 'distill', 'shapes', 'cli'];

// Tests import sibling packages from source, so one run needs no rebuild between edits and every
// package shares one module instance of each dependency.
const alias = [
  { find: /^@t2md\/core\/testing$/, replacement: fileURLToPath(new URL('packages/core/src/testing/index.ts', import.meta.url)) },
  { find: /^@t2md\/ssm\/testing$/, replacement: fileURLToPath(new URL('packages/ssm/src/testing.ts', import.meta.url)) },
  { find: /^@t2md\/dit\/testing$/, replacement: fileURLToPath(new URL('packages/dit/src/testing.ts', import.meta.url)) },
  ...packages.map((name) => ({
    find: new RegExp(`^@t2md/${name}$`),
    replacement: fileURLToPath(new URL(`packages/${name}/src/index.ts`, import.meta.url)),
  })),
];

export default defineConfig({
  test: {
    projects: [
      ...packages.map((name) => ({
        resolve: { alias },
        test: {
          name,
          root: `packages/${name}`,
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          environment: 'node' as const,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks' as const,
        },
      })),
      {
        resolve: { alias },
        test: {
          name: 'docs',
          root: 'apps/docs',
          include: ['test/**/*.test.ts'],
          environment: 'node' as const,
          testTimeout: 600_000,
          hookTimeout: 600_000,
          pool: 'forks' as const,
        },
      },
      {
        test: {
          name: 'repo',
          root: 'test',
          include: ['**/*.test.ts'],
          environment: 'node' as const,
          testTimeout: 600_000,
          hookTimeout: 600_000,
          pool: 'forks' as const,
        },
      },
    ],
    maxWorkers: 2,
    reporters: ['default'],
  },
});
