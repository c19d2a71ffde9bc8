import { defineConfig } from 'vitepress';

/**
 * The package pages include each package's README, whose relative links point into the repository
 * (`../../README.md`, `../ssm/README.md`). Send them to the matching pages of the site instead.
 */
function repositoryLinks(href: string): string {
  if (/^(\.\.\/){2}README\.md(#.*)?$/.test(href)) return '/guide/getting-started';
  const pkg = /^\.\.\/(core|ssm|dit|sampler|distill|shapes|cli)\/README\.md(#.*)?$/.exec(href);
  if (pkg) return `/packages/${pkg[1]}${pkg[2] ?? ''}`;
  return href;
}

// The site builds into apps/docs/dist; the playground is dist/playground.html (cleanUrls off).
export default defineConfig({
  title: 'T2MD.js',
  description: 'Diffusion Transformer-to-Mamba distillation on TensorFlow.js and WebGPU',
  outDir: './dist',
  cleanUrls: false,
  lastUpdated: false,
  head: [['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }]],
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
      {
        text: 'Reference',
        items: [
          { text: 'API', link: '/api/' },
          { text: 'Benchmarks', link: '/benchmarks' },
          { text: 'Playground', link: '/playground' },
        ],
      },
    ],
    search: { provider: 'local' },
  },
  markdown: {
    config: (md) => {
      md.core.ruler.push('t2md-repository-links', (state) => {
        for (const block of state.tokens) {
          for (const t of block.children ?? []) {
            if (t.type === 'link_open') {
              const href = t.attrGet('href');
              if (href != null) t.attrSet('href', repositoryLinks(href));
            }
          }
        }
      });
    },
  },
  vite: {
    optimizeDeps: { exclude: ['webgpu'] },
    build: { chunkSizeWarningLimit: 4000 },
  },
});
