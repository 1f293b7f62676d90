# Shared by the scripts: Node 24 on PATH, and Postgres/Redis found or started. Source it, don't run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE_MAJOR=24

log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Node 24 LTS, as in the images. The machine's node is used when it is 24; otherwise the official
# binary is installed from the npm registry (package node-linux-<arch>) into .tools/.
ensure_node() {
  if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$NODE_MAJOR" ]; then
    return
  fi
  local dir="$ROOT/.tools/node$NODE_MAJOR"
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null 2>&1 || die "Node.js and npm are needed to bootstrap Node $NODE_MAJOR (apt-get install nodejs npm)"
    local arch
    case "$(uname -m)" in x86_64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) die "unsupported CPU $(uname -m)" ;; esac
    log "installing Node $NODE_MAJOR into .tools/ (from the npm registry)"
    local tmp; tmp="$(mktemp -d)"
    npm install --prefix "$tmp" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$NODE_MAJOR" >/dev/null
    rm -rf "$dir"; mkdir -p "$ROOT/.tools"
    mv "$tmp/node_modules/node-linux-$arch" "$dir"
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
}

# node_modules matching package-lock.json (reinstalled when the lock file changes)
ensure_deps() {
  local stamp="$ROOT/node_modules/.pincer-lock.sha"
  local want; want="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing dependencies (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "cannot install $*: no apt-get; install it yourself"
  [ "$(id -u)" = 0 ] || die "cannot install $* without root; install it yourself"
  log "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_port() {
  local i
  for i in $(seq 1 60); do port_open "$1" "$2" && return 0; sleep 0.5; done
  return 1
}

# Redis on 127.0.0.1:6379: used if running, else started (installed first if missing).
ensure_redis() {
  port_open 127.0.0.1 6379 && return
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  log "starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/pincer-redis.log" >/dev/null
  wait_port 127.0.0.1 6379 || die "Redis did not start (see ${TMPDIR:-/tmp}/pincer-redis.log)"
}

# PostgreSQL on 127.0.0.1:5432 with trust auth for local tests: used if running, else started.
ensure_postgres() {
  port_open 127.0.0.1 5432 && return
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then apt_install postgresql; fi
  log "starting PostgreSQL on 127.0.0.1:5432"
  local v; v="$(ls /etc/postgresql | sort -V | tail -1)"
  pg_ctlcluster --skip-systemctl-redirect "$v" main start || die "PostgreSQL did not start"
  wait_port 127.0.0.1 5432 || die "PostgreSQL is not listening on 127.0.0.1:5432"
}

# docker-compose (Debian's) validates docker-compose.yml in the tests without a Docker engine.
ensure_compose_validator() {
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
}

# apt_install, without letting the package start its daemon (we run nginx and Prometheus ourselves).
apt_install_quiet() {
  local guard=/usr/sbin/policy-rc.d had=0
  [ -e "$guard" ] && had=1
  [ "$had" = 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$guard" && chmod +x "$guard"; }
  apt_install "$@"
  [ "$had" = 1 ] || rm -f "$guard"
}

# nginx and Prometheus (promtool) from Debian's packages: `nginx -t`, rule tests, the local stack.
ensure_ops_tools() {
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_install_quiet nginx
  command -v promtool >/dev/null 2>&1 || apt_install_quiet prometheus
  command -v amtool >/dev/null 2>&1 || apt_install_quiet prometheus-alertmanager
  command -v openssl >/dev/null 2>&1 || apt_install_quiet openssl
  command -v curl >/dev/null 2>&1 || apt_install_quiet curl
  # busybox's httpd serves the backup job's metrics, as in the backup container
  command -v busybox >/dev/null 2>&1 || apt_install_quiet busybox
}

# Debian's Chromium for the web console's browser tests (driven by playwright-core; never a download)
ensure_browser() {
  command -v chromium >/dev/null 2>&1 || apt_install_quiet chromium
}
