#!/usr/bin/env bash
# Installs the constant-rate load generator of `just bench capacity`: vegeta, pinned, built from
# the Go module proxy into .local/tools/bin (project-local; nothing system-wide). Idempotent: a
# binary already built from the pinned module version is kept, so a second run only checks.
# Needs a Go toolchain >= 1.22 (vegeta's go.mod); Debian bookworm's golang-go is 1.19, so the
# toolchain itself is not installed here: the script says so and stops when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

VEGETA_MODULE=github.com/tsenart/vegeta/v12
VEGETA_VERSION=${VEGETA_VERSION:-v12.13.0}
BIN_DIR=$PWD/.local/tools/bin
BIN=$BIN_DIR/vegeta

GO=$(command -v go || true)
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi

installed_version() {
  # The module version is recorded in the binary's build info (no -version ldflags needed).
  if [ -x "$BIN" ] && [ -n "$GO" ]; then
    "$GO" version -m "$BIN" 2>/dev/null | awk -v m="$VEGETA_MODULE" '$1 == "mod" && $2 == m {print $3}'
  fi
}

if [ "$(installed_version)" = "$VEGETA_VERSION" ]; then
  echo "[install-loadgen] vegeta $VEGETA_VERSION present: $BIN"
  exit 0
fi
if [ -z "$GO" ]; then
  echo "[install-loadgen] a Go toolchain (>= 1.22) is needed to build vegeta $VEGETA_VERSION; none found" >&2
  exit 1
fi
echo "[install-loadgen] building vegeta $VEGETA_VERSION with $("$GO" version | cut -d' ' -f3) into $BIN_DIR"
mkdir -p "$BIN_DIR"
GOBIN=$BIN_DIR GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" install "$VEGETA_MODULE@$VEGETA_VERSION"
if [ "$(installed_version)" != "$VEGETA_VERSION" ]; then
  echo "[install-loadgen] $BIN does not report $VEGETA_MODULE $VEGETA_VERSION" >&2
  exit 1
fi
echo "[install-loadgen] done"
