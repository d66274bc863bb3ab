import { defineConfig } from 'vite';

// Output goes where dashboards/build.rs asks (SOC_UI_OUT_DIR), else ./dist.
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: process.env.SOC_UI_OUT_DIR || 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    // No inline assets: the server's CSP is `default-src 'self'` (no data: fonts/images needed).
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: { '/api': process.env.SOC_API || 'http://127.0.0.1:8080' },
  },
});
