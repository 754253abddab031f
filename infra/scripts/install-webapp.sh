#!/usr/bin/env bash
# Builds the web app (infra/webapp: Preact + uPlot, bundled by Vite) into infra/webapp/dist, which
# the stack's nginx serves under /app/. Idempotent: `npm ci` runs only when package-lock.json
# changed, the build only when the lock, the config or a source file changed.
set -euo pipefail
cd "$(dirname "$0")/../webapp"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "[install-webapp] node and npm are required (node >= 20.19, e.g. NodeSource's nodejs 20)" >&2
  exit 1
fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)'; then
  echo "[install-webapp] node >= 20.19 is required (this is $(node --version))" >&2
  exit 1
fi

deps_want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.installed ] || [ "$(cat node_modules/.installed)" != "$deps_want" ]; then
  echo "[install-webapp] npm ci (package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$deps_want" > node_modules/.installed
fi

build_want=$(find package.json package-lock.json vite.config.js index.html src -type f -print0 | sort -z \
  | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ -f dist/index.html ] && [ -f dist/.built ] && [ "$(cat dist/.built)" = "$build_want" ]; then
  exit 0
fi
echo "[install-webapp] npm run build -> infra/webapp/dist"
npm run --silent build
echo "$build_want" > dist/.built
echo "[install-webapp] done"
