// Built by infra/scripts/install-webapp.sh (`npm ci && npm run build`) into dist/, which the
// stack's nginx serves under /app/: hashed files in dist/assets/ (cached for a year), index.html
// revalidated on every load.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/app/",
  // Preact's automatic JSX runtime, compiled by Vite's own transformer (no Babel plugin).
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // No inline <script>/<style> and no data: URLs: the Content-Security-Policy allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
});
