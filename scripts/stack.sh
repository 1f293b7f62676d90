#!/usr/bin/env bash
# The whole stack without Docker: every service as a process, nginx and Prometheus from Debian's
# packages, local Postgres and Redis, the mock model, and (--emulators) the Telegram and Feishu emulators.
#   scripts/stack.sh start [--emulators] | stop | status | env
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/env.sh
source scripts/lib/env.sh

if [ "${1:-}" = start ]; then
  ensure_node
  ensure_deps
  ensure_redis
  ensure_postgres
  ensure_ops_tools
  log "building"
  npm run build --silent
else
  ensure_node
fi
exec node --conditions=pincer-source scripts/local-stack.ts "$@"
