#!/usr/bin/env bash
# `npm test`: prepares everything the suite needs on a fresh machine (node >= 22, npm
# dependencies, Redis, PostgreSQL, a Docker engine, the test sandbox image), then type-checks
# and runs the whole suite against the real services. Extra arguments go to vitest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
started=$(date +%s)
ensure_node
ensure_deps
ensure_redis
ensure_postgres
ensure_docker
ensure_sandbox_image
log "set-up done in $(( $(date +%s) - started )) s (node $(node --version))"
cd "$ROOT"
npx tsc -p tsconfig.json --noEmit
npx tsx scripts/write-config-schema.ts --check
exec npx vitest run "$@"
