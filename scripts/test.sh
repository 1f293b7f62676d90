#!/usr/bin/env bash
# The one test command: on a fresh clone it installs what is missing (Node 24, npm dependencies),
# finds or starts Postgres and Redis, then lints, typechecks, builds and runs every test.
# Ends with a plain "N passed, N failed" line. Extra arguments are test files to run instead of all.
set -euo pipefail
source "$(dirname "$0")/lib/env.sh"
cd "$ROOT"

ensure_node
ensure_deps
ensure_redis
ensure_postgres
ensure_compose_validator
ensure_ops_tools
ensure_browser
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

log "lint (eslint) and format check (prettier)"
npx eslint --max-warnings=0 . && npx prettier --check . >/dev/null
log "typecheck (tsc, strict)"
npx tsc -p tsconfig.json --noEmit && npx tsc -p services/core/console/tsconfig.json
log "build (what the images ship)"
npm run build --silent

if [ $# -gt 0 ]; then files=("$@"); else
  mapfile -t files < <({ find packages services -path '*/node_modules' -prune -o -path '*/test/*.test.ts' -print; find tests -name '*.test.ts'; } | sort)
fi
[ ${#files[@]} -gt 0 ] || die "no test files found"
log "running ${#files[@]} test files"
out="$(mktemp)"
set +e
node --conditions=pincer-source --test --test-concurrency=2 --test-timeout=120000 \
  --test-reporter=spec "${files[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -E '^ℹ pass [0-9]+' "$out" | tail -1 | awk '{print $3}')
failed=$(grep -E '^ℹ fail [0-9]+' "$out" | tail -1 | awk '{print $3}')
# a test that timed out is reported as cancelled: it failed
cancelled=$(grep -E '^ℹ cancelled [0-9]+' "$out" | tail -1 | awk '{print $3}')
failed=$((${failed:-0} + ${cancelled:-0}))
rm -f "$out"
echo
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "$status" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then exit 1; fi
