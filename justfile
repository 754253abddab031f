# The index of every operation on this project. Run through ./justw on a fresh machine
# (it installs `just` itself); `just --list` shows this list.
set dotenv-load := true
set positional-arguments := true

py := justfile_directory() / ".venv/bin/python"
ctl := justfile_directory() / ".venv/bin/supervisorctl -c " + justfile_directory() / ".local/supervisord.conf"

# List the recipes
default:
    @just --list --unsorted

# Install everything the stack needs (Debian packages, Python deps, the web app's build); idempotent
install:
    @bash infra/scripts/install-system.sh
    @bash infra/scripts/install-python.sh
    @bash infra/scripts/install-webapp.sh

# Start the whole stack (infrastructure + all services) and wait until it serves;
# `just up --profile cluster`: Kafka x3, PostgreSQL + replica + PgBouncer, ClickHouse 2x2 (docs/cluster.md)
up *args: install
    {{py}} -m stackctl up "$@"

# Start only the infrastructure (Kafka, PostgreSQL, Redis x2, ClickHouse, nginx, Prometheus)
up-infra: install
    {{py}} -m stackctl up --infra-only

# Stop every process of the stack (`--profile cluster`: the cluster's); fails if anything is left running
down *args:
    {{py}} -m stackctl down "$@"

# Show every supervised program and its state
status:
    @{{ctl}} status || true

# Follow one program's log (e.g. just logs redirect-1); names: just status
logs name lines="200":
    tail -n {{lines}} -F .local/logs/{{name}}.log

# Restart one or more programs (e.g. just restart redirect-1 redirect-2) with the settings of
# .env and this shell (rendered again first: a setting changed since `just up` reaches them)
restart +names:
    {{py}} -m stackctl restart "$@"

# Stop one or more programs (supervisord keeps them stopped until start)
stop +names:
    {{ctl}} stop "$@"

# Start one or more programs
start +names:
    {{ctl}} start "$@"

# Probe every component and service (the smoke check; `--profile cluster`); non-zero when one fails
check *args:
    {{py}} -m stackctl check "$@"

# Apply the PostgreSQL and ClickHouse schema files
migrate:
    {{py}} -m stackctl migrate

# Create or update the Kafka topics declared in libs/contracts/topics.py
topics:
    {{py}} -m stackctl topics

# Static checks: ruff (lint, and the format check: the tree is formatted) and mypy (strict on libs/ and services/)
lint: install
    .venv/bin/ruff check libs services infra tests loadtest
    .venv/bin/ruff format --check libs services infra tests loadtest
    .venv/bin/mypy

# The whole test suite: installs, brings the stack up, lints, runs every tier
test: up lint
    .venv/bin/pytest -m "not destructive" -q --ignore=tests/lifecycle --ignore=tests/cluster --ignore=tests/regions
    .venv/bin/pytest -m destructive -q --ignore=tests/lifecycle --ignore=tests/cluster --ignore=tests/regions
    .venv/bin/pytest -q tests/lifecycle

# Only the fast unit tests (no stack needed)
test-unit: install
    .venv/bin/pytest -m unit -q

# The API contract alone, on the running stack (`just up` first): schemathesis fuzzes every
# operation of every service's OpenAPI document (tests/e2e/test_api_contract.py; CONTRACT_MAX_EXAMPLES=N)
test-contract *args: install
    .venv/bin/pytest -q tests/e2e/test_api_contract.py "$@"

# API keys of workspaces: `just keys create --workspace acme --scopes links:write,stats:read [--name N]
# [--expires-in 90d]` (prints the secret once), `just keys list [--workspace W]`, `just keys rotate <id>
# [--grace 1h]`, `just keys revoke <id>` (docs/security.md)
keys *args:
    {{py}} -m shorten keys "$@"

# CSV header row: url, alias, expires_at, redirect_type, max_clicks, public_stats, tags; failed rows
# with their error codes go to <file>.failed.csv (services/shorten/README.md "Bulk import")
# Import links from a CSV file through the API, with a progress bar: `just import links.csv [--workspace-key FILE] [--chunk-rows N]`
import *args:
    {{py}} -m shorten import "$@"

# Topic-level replay: `just replay links` (rebuild the redirect read model in Redis from offset 0)
# or `just replay clicks --from 2026-11-27T10:00:00Z [--to …] [--code C …]` (idempotent sinks)
replay what *args:
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{what}}" in
      links)  shift; exec {{py}} -m redirect replay-links "$@" ;;
      clicks) shift; exec {{py}} -m aggregator replay-clicks "$@" ;;
      *) echo "usage: just replay links | just replay clicks --from <ISO time>" >&2; exit 2 ;;
    esac

# Drop ClickHouse partitions and event-id ledger rows older than the retention (see docs/operations.md)
retention *args:
    {{py}} -m aggregator retention "$@"

# Render the Kubernetes manifests of an overlay (dev | prod) to stdout; see docs/kubernetes.md
k8s-render overlay="prod":
    @bash infra/scripts/install-k8stools.sh >&2
    .local/tools/bin/kustomize build infra/k8s/overlays/{{overlay}}

# Benchmarks (not tests): `just bench redirect | pipeline | analytics | analytics-auth | writes | notfound | geoip | clickhouse-writes | capacity | scale-out | list | import | regions | live`; results in docs/benchmarks/
bench what *args:
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{what}}" in
      redirect|pipeline|analytics|writes|notfound) shift; exec {{py}} infra/bench/{{what}}.py "$@" ;;
      geoip) shift; exec {{py}} -P infra/bench/geoip.py "$@" ;;
      clickhouse-writes) shift; exec {{py}} infra/bench/clickhouse_writes.py "$@" ;;
      analytics-auth) shift; exec {{py}} infra/bench/analytics_auth.py "$@" ;;
      list) shift; exec {{py}} infra/bench/links_list.py "$@" ;;
      import) shift; exec {{py}} infra/bench/import_links.py "$@" ;;
      capacity) shift; bash infra/scripts/install-loadgen.sh; exec {{py}} infra/bench/capacity.py "$@" ;;
      scale-out) shift; bash infra/scripts/install-loadgen.sh; STACK_PROFILE=cluster exec {{py}} infra/bench/scale_out.py "$@" ;;
      live) shift; exec {{py}} infra/bench/live.py "$@" ;;
      regions) shift; exec {{py}} infra/bench/regions.py "$@" ;;
      *) echo "usage: just bench redirect | pipeline | analytics | analytics-auth | writes | notfound | geoip | clickhouse-writes | capacity | scale-out | list | import | regions | live" >&2; exit 2 ;;
    esac

# The web app's browser tests (headless chromium) writing each page's screenshot to docs/screenshots/
screenshots:
    WEBAPP_SCREENSHOTS={{justfile_directory()}}/docs/screenshots .venv/bin/pytest -q tests/e2e/test_webapp.py

# Bounded load test (locust, loopback only) ending with the click-count check
loadtest *args:
    {{py}} -m loadtest run --profile default "$@"

# The seed runbook's 100k profile (REQUEST_GENERATOR_*_100K / TARGET_*_100K knobs)
loadtest-100k *args:
    {{py}} -m loadtest run --profile 100k "$@"

# Distributed run: locust master + REQUEST_GENERATOR_WORKERS_DIST workers (*_DIST knobs)
loadtest-dist *args:
    {{py}} -m loadtest run --profile dist "$@"

# Bounded fault suite on the running stack (loopback only): every scenario, or `--ci`, `--only NAME`,
# `--list`; prints scenario | requests | failed | clicks served | counted | lost | twice | recovery;
# `--profile cluster`: the cluster's own faults on `just up --profile cluster` (docs/cluster.md)
chaos *args:
    {{py}} -m chaos "$@"

# Phase D drill (docs/regions.md): `just regions up` starts region B (its own Kafka, redirect,
# aggregator, analytics) and MirrorMaker 2 both ways next to the running stack (region A);
# `just regions drill` runs tests/regions and the lag benchmark's check; `just regions down|status`
regions what *args:
    #!/usr/bin/env bash
    set -euo pipefail
    case "{{what}}" in
      up|down|status) exec {{py}} -m stackctl.regions "{{what}}" ;;
      drill) shift; exec .venv/bin/pytest -q -m regions tests/regions "$@" ;;
      *) echo "usage: just regions up | down | status | drill" >&2; exit 2 ;;
    esac

# After a Redis Sentinel failover: make the `redis` program the primary again
redis-failback:
    {{py}} -m stackctl redis-failback

# Where the dashboards and metrics are
boards:
    {{py}} -m loadtest boards
