#!/usr/bin/env bash
# Installs the Debian packages the native stack runs on. Idempotent: a package already
# installed is skipped, so a second run only checks. The distribution's own services are
# never started: the project runs every server as its own process under supervisord.
set -euo pipefail

# chromium: the headless browser the web app's tests drive (tests/e2e/test_webapp.py, Playwright).
PACKAGES=(postgresql redis-server nginx-light clickhouse-server clickhouse-client prometheus wrk chromium)
# `install-system.sh cluster` (just up --profile cluster): PgBouncer in front of PostgreSQL and
# ZooKeeper for ClickHouse 18.16's replicated tables (docs/cluster.md).
if [ "${1:-}" = cluster ]; then PACKAGES+=(pgbouncer zookeeper); fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "[install-system] all Debian packages present: ${PACKAGES[*]}"
  exit 0
fi

echo "[install-system] installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# policy-rc.d exit 101 tells invoke-rc.d not to start the packaged system services.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
# Refresh package lists when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  echo "[install-system] apt-get update"
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "[install-system] done"
