#!/usr/bin/env bash
# Installs what renders the Kubernetes manifests (infra/k8s, docs/kubernetes.md): kustomize,
# pinned, built from the Go module proxy into .local/tools/bin (project-local; nothing
# system-wide). Idempotent: a binary already built from the pinned module version is kept.
# v5.8.2 is the newest kustomize whose go.mod (go 1.26.0) builds with this machine's Go 1.26;
# v5.8.3 needs Go 1.27. The validator (kubernetes-validate) is a Python package: requirements-dev.
set -euo pipefail
cd "$(dirname "$0")/../.."

KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}
BIN_DIR=$PWD/.local/tools/bin
BIN=$BIN_DIR/kustomize

GO=$(command -v go || true)
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi

installed_version() {
  # The module version is recorded in the binary's build info.
  if [ -x "$BIN" ] && [ -n "$GO" ]; then
    "$GO" version -m "$BIN" 2>/dev/null | awk -v m="$KUSTOMIZE_MODULE" '$1 == "mod" && $2 == m {print $3}'
  fi
}

if [ "$(installed_version)" = "$KUSTOMIZE_VERSION" ]; then
  echo "[install-k8stools] kustomize $KUSTOMIZE_VERSION present: $BIN"
  exit 0
fi
if [ -z "$GO" ]; then
  echo "[install-k8stools] a Go toolchain (>= 1.26) is needed to build kustomize $KUSTOMIZE_VERSION; none found" >&2
  exit 1
fi
echo "[install-k8stools] building kustomize $KUSTOMIZE_VERSION with $("$GO" version | cut -d' ' -f3) into $BIN_DIR"
mkdir -p "$BIN_DIR"
GOBIN=$BIN_DIR GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" install "$KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION"
if [ "$(installed_version)" != "$KUSTOMIZE_VERSION" ]; then
  echo "[install-k8stools] $BIN does not report $KUSTOMIZE_MODULE $KUSTOMIZE_VERSION" >&2
  exit 1
fi
echo "[install-k8stools] done"
