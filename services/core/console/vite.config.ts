// The web console: a static single-page app that core serves at /admin/ (built with `npm run build:console`).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/admin/',
  // Preact's automatic JSX runtime through Vite's own TypeScript/JSX transform (no Babel plugin)
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // every supported browser has modulepreload; the polyfill would be one more script to allow
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
});
