import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

// The console is served by livebase at /_/ (config `server.console_dir`, default console/dist).
// It uses the JS client straight from its TypeScript sources, so the client needs no build step.
const client = fileURLToPath(new URL('../clients/js/src/index.ts', import.meta.url));
// `npm run dev` proxies the API and the socket to a running server (default the example's port).
const target = process.env.CONSOLE_API_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/_/',
  resolve: { alias: { '@livebase/client': client } },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      '/api': { target, changeOrigin: true },
      '/ws': { target, ws: true, changeOrigin: true },
    },
  },
});
