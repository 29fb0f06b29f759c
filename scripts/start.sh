#!/usr/bin/env bash
# `npm start`: installs what the app needs and starts it. Without GitHub App credentials
# (APP_ID, PRIVATE_KEY / PRIVATE_KEY_PATH, WEBHOOK_SECRET in the environment or .env) this is
# Probot's registration (manifest) flow from app.yml, which writes .env; start again after.
# Arguments go to the app, e.g. `npm start -- --role=web`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_node
ensure_deps
cd "$ROOT"
registered=0
if [ -n "${APP_ID:-}" ] || grep -qE '^APP_ID=.+' .env 2>/dev/null; then registered=1; fi
if [ "$registered" = 1 ]; then
  ensure_redis
  ensure_postgres
  ensure_docker
  # The offline test image stands in when no production image is configured.
  if [ "${SANDBOX_IMAGE:-agent-sandbox:test}" = agent-sandbox:test ]; then ensure_sandbox_image; fi
fi
npx tsc -p tsconfig.build.json
exec node dist/main.js "$@"
