import { defineConfig } from 'vitepress';

// The site builds into apps/docs/dist; the playground is dist/playground.html (cleanUrls off).
export default defineConfig({
  title: 'T2MD.js',
  description: 'Diffusion Transformer-to-Mamba distillation on TensorFlow.js and WebGPU',
  outDir: './dist',
  cleanUrls: false,
  lastUpdated: false,
  ignoreDeadLinks: false,
  srcExclude: ['README.md', 'test/**', 'examples/**'],
  themeConfig: {
    nav: [
      { text: 'Guide', link: '/guide/what-is-t2md' },
      { text: 'Packages', link: '/packages/core' },
      { text: 'API', link: '/api/' },
      { text: 'Benchmarks', link: '/benchmarks' },
      { text: 'Playground', link: '/playground' },
    ],
    sidebar: [
      {
        text: 'Guide',
        items: [
          { text: 'What is T2MD?', link: '/guide/what-is-t2md' },
          { text: 'Five-minute start', link: '/guide/getting-started' },
          { text: 'WebGPU in Node and the browser', link: '/guide/webgpu' },
        ],
      },
      {
        text: 'Packages',
        items: ['core', 'ssm', 'dit', 'sampler', 'distill', 'shapes', 'cli'].map((p) => ({ text: `@t2md/${p}`, link: `/packages/${p}` })),
      },
      { text: 'Reference', items: [{ text: 'API', link: '/api/' }, { text: 'Benchmarks', link: '/benchmarks' }, { text: 'Playground', link: '/playground' }] },
    ],
    search: { provider: 'local' },
  },
  vite: {
    optimizeDeps: { exclude: ['webgpu'] },
    build: { chunkSizeWarningLimit: 4000 },
  },
});
