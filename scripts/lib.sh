# Shared set-up steps for scripts/test.sh and scripts/start.sh. Each one is idempotent and
# fast when its work is already done. Sourced, not run.
# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"

log() { printf '[setup] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
  # `apt-get update` once per run of a script, and only when something is missing.
  if [ -z "${_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq >/dev/null
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

node_ok() {
  command -v node >/dev/null 2>&1 &&
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)' 2>/dev/null
}

# Node >= 22.12: the system's when new enough, else npm's `node@24` package in .tools/node.
ensure_node() {
  local local_bin="$ROOT/.tools/node/node_modules/.bin"
  if [ -x "$local_bin/node" ]; then export PATH="$local_bin:$PATH"; fi
  node_ok && return 0
  log "node $(node --version 2>/dev/null || echo none) is too old; installing node@24 into .tools/node"
  mkdir -p "$ROOT/.tools/node"
  npm install --prefix "$ROOT/.tools/node" --no-save --no-package-lock --no-audit --no-fund --loglevel=error node@24 >/dev/null
  export PATH="$local_bin:$PATH"
  node_ok || { log "could not get node >= 22.12"; return 1; }
}

# npm ci when node_modules is missing or older than the lock file.
ensure_deps() {
  local stamp="$ROOT/node_modules/.package-lock.json"
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/package-lock.json" ]; then return 0; fi
  log "installing dependencies (npm ci)"
  (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server redis-tools
  log "starting redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "redis did not come up"; return 1
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    local v; v=$(ls /etc/postgresql | sort -V | tail -n1)
    # Trust auth on loopback, as on this project's machines.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/; s/^(local\s+all\s+(postgres|all)\s+)\S+/\1trust/' \
      "/etc/postgresql/$v/main/pg_hba.conf"
  fi
  log "starting postgresql"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  for _ in $(seq 1 100); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  pg_isready -q -h 127.0.0.1 -p 5432 || { log "postgresql did not come up"; return 1; }
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test" >/dev/null
}

# A Compose CLI for test/unit/compose-config.test.ts (`docker compose config`): the v2 plugin
# when the docker CLI has it, else Debian's docker-compose (v1, the one bookworm packages).
ensure_compose() {
  if docker compose version >/dev/null 2>&1 || docker-compose version >/dev/null 2>&1; then return 0; fi
  log "installing docker-compose"
  apt_install docker-compose
}

# gVisor for untrusted code (forks): Debian's runsc, registered with dockerd as `runsc` with
# `--network=none` (without it runsc refuses to run in the root network namespace). Merged
# into an existing /etc/docker/daemon.json; a running dockerd reloads it on SIGHUP.
register_runsc() {
  command -v runsc >/dev/null 2>&1 || apt_install runsc
  local conf=/etc/docker/daemon.json
  as_root mkdir -p /etc/docker
  as_root node -e '
    const fs = require("fs");
    const file = process.argv[1];
    let conf = {};
    try { conf = JSON.parse(fs.readFileSync(file, "utf8")); } catch {}
    const want = { path: process.argv[2], runtimeArgs: ["--network=none"] };
    if (JSON.stringify((conf.runtimes || {}).runsc) === JSON.stringify(want)) process.exit(0);
    conf.runtimes = { ...(conf.runtimes || {}), runsc: want };
    fs.writeFileSync(file, JSON.stringify(conf, null, 2) + "\n");
  ' "$conf" "$(command -v runsc)"
}

ensure_runsc_registered() {
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && return 0
  log "registering runsc (gVisor) with dockerd"
  as_root pkill -HUP -x dockerd || true
  for _ in $(seq 1 50); do docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && return 0; sleep 0.2; done
  log "dockerd did not pick up the runsc runtime; see /etc/docker/daemon.json"; return 1
}

# A Docker engine: Debian's docker.io, dockerd without a bridge network (sandboxes use `none`),
# gVisor registered as a second runtime, and a Compose CLI beside it.
ensure_docker() {
  ensure_compose
  register_runsc
  if docker info >/dev/null 2>&1; then ensure_runsc_registered; return 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io"
    apt_install docker.io
  fi
  log "starting dockerd (no bridge network)"
  as_root sh -c "nohup dockerd --bridge=none --iptables=false --ip6tables=false >'$CACHE/dockerd.log' 2>&1 &"
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && { ensure_runsc_registered; return 0; }; sleep 0.2; done
  log "dockerd did not come up; see $CACHE/dockerd.log"; tail -n 20 "$CACHE/dockerd.log" >&2; return 1
}

# The test sandbox image, built offline (debootstrap) unless SANDBOX_IMAGE_BUILD=dockerfile.
ensure_sandbox_image() {
  if [ "${SANDBOX_IMAGE_BUILD:-debootstrap}" = dockerfile ]; then
    docker build -q -t "${SANDBOX_TEST_IMAGE:-agent-sandbox:test}" -f "$ROOT/docker/sandbox-test.Dockerfile" "$ROOT" >/dev/null
    return 0
  fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  SANDBOX_NODE_BIN="$(command -v node)" bash "$ROOT/scripts/build-sandbox-image.sh" "${SANDBOX_TEST_IMAGE:-agent-sandbox:test}" >&2
}
