#!/bin/sh
# Entrypoint of the compose `backup` service (postgres:16-alpine + bash + busybox-extras), POSIX sh.
# Runs scripts/backup.sh once at start when no archive from the last 24 h exists, then every day at
# BACKUP_AT (UTC), retrying a failed run every BACKUP_RETRY_SECONDS until the next scheduled time;
# serves BACKUP_DIR/metrics at http://:BACKUP_METRICS_PORT/metrics for Prometheus.
#
#   BACKUP_AT             HH:MM in UTC (default 03:30)
#   BACKUP_METRICS_PORT   port of the metrics endpoint (default 9108; 0 turns it off)
#   BACKUP_RETRY_SECONDS  wait before retrying a failed backup (default 900)
#   plus everything backup.sh reads: DATABASE_URL, BACKUP_DIR, BACKUP_KEEP_DAYS, PINCER_CONFIG_DIR
#
# Only the metrics file is served (from a folder of its own), never the archives.
set -eu

log() { printf '%s backup-cron: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

HERE="$(cd "$(dirname "$0")" && pwd)"
BACKUP_AT="${BACKUP_AT:-03:30}"
PORT="${BACKUP_METRICS_PORT:-9108}"
RETRY="${BACKUP_RETRY_SECONDS:-900}"
BACKUP_DIR="${BACKUP_DIR:-./backups}"
mkdir -p "$BACKUP_DIR" || die "cannot create BACKUP_DIR $BACKUP_DIR"
BACKUP_DIR="$(cd "$BACKUP_DIR" && pwd)"
export BACKUP_DIR

case "$BACKUP_AT" in
  [0-2][0-9]:[0-5][0-9]) ;;
  *) die "BACKUP_AT must be HH:MM in UTC (got '$BACKUP_AT')" ;;
esac
AT_H=$(printf '%s' "$BACKUP_AT" | cut -d: -f1 | sed 's/^0//')
AT_M=$(printf '%s' "$BACKUP_AT" | cut -d: -f2 | sed 's/^0//')
[ "$AT_H" -lt 24 ] || die "BACKUP_AT must be HH:MM in UTC (got '$BACKUP_AT')"
case "$PORT" in '' | *[!0-9]*) die "BACKUP_METRICS_PORT must be a port number (got '$PORT')" ;; esac
case "$RETRY" in '' | *[!0-9]* | 0) die "BACKUP_RETRY_SECONDS must be a positive number (got '$RETRY')" ;; esac
command -v bash >/dev/null || die "bash is needed by backup.sh (apk add --no-cache bash)"
command -v pg_dump >/dev/null || die "pg_dump not found"

# --- the metrics endpoint ------------------------------------------------------------------------

WWW="$(mktemp -d "${TMPDIR:-/tmp}/pincer-backup-metrics-XXXXXX")"
chmod 755 "$WWW"
HTTPD_PID=""
BACKUP_PID=""
SLEEP_PID=""
NEXT=0

# the served file: backup.sh's metrics plus when the next run is due (written atomically)
publish() {
  if ! {
    if [ -f "$BACKUP_DIR/metrics" ]; then cat "$BACKUP_DIR/metrics"; fi
    echo '# HELP pincer_backup_next_run_timestamp_seconds Unix time the next scheduled backup is due.'
    echo '# TYPE pincer_backup_next_run_timestamp_seconds gauge'
    echo "pincer_backup_next_run_timestamp_seconds $NEXT"
  } >"$WWW/.metrics.tmp" || ! chmod 644 "$WWW/.metrics.tmp" || ! mv -f "$WWW/.metrics.tmp" "$WWW/metrics"; then
    log "WARNING: cannot publish the metrics file"
  fi
}

start_httpd() {
  [ "$PORT" != 0 ] || return 0
  if command -v httpd >/dev/null && httpd --help 2>&1 | grep -qi busybox; then
    httpd -f -p "$PORT" -h "$WWW" &
  elif command -v busybox-extras >/dev/null; then
    busybox-extras httpd -f -p "$PORT" -h "$WWW" &
  elif busybox --list 2>/dev/null | grep -qx httpd; then
    busybox httpd -f -p "$PORT" -h "$WWW" &
  else
    die "no busybox httpd to serve metrics on :$PORT (apk add --no-cache busybox-extras, or BACKUP_METRICS_PORT=0)"
  fi
  HTTPD_PID=$!
  log "serving metrics on :$PORT/metrics"
}

stop() {
  log "stopping"
  if [ -n "$BACKUP_PID" ]; then
    kill -TERM "$BACKUP_PID" 2>/dev/null || true
    wait "$BACKUP_PID" 2>/dev/null || true
  fi
  if [ -n "$SLEEP_PID" ]; then kill "$SLEEP_PID" 2>/dev/null || true; fi
  if [ -n "$HTTPD_PID" ]; then kill "$HTTPD_PID" 2>/dev/null || true; fi
  rm -rf "$WWW"
  exit 0
}
trap stop TERM INT HUP

# --- schedule ------------------------------------------------------------------------------------

now() { date -u +%s; }

# the next BACKUP_AT strictly after now (unix seconds; UTC days are exactly 86400 s)
next_scheduled() {
  n=$(now)
  day=$((n - n % 86400))
  t=$((day + AT_H * 3600 + AT_M * 60))
  [ "$t" -gt "$n" ] || t=$((t + 86400))
  echo "$t"
}

recent_archive() {
  [ -n "$(find "$BACKUP_DIR" -maxdepth 1 -type f -name 'pincer-*.tar.gz' -mmin -1440 2>/dev/null | head -n 1)" ]
}

run_backup() {
  log "starting a backup"
  bash "$HERE/backup.sh" &
  BACKUP_PID=$!
  status=0
  wait "$BACKUP_PID" || status=$?
  BACKUP_PID=""
  return "$status"
}

# runs the backup; sets NEXT to the next scheduled time, or to a retry when it failed
backup_and_plan() {
  if run_backup; then
    NEXT=$(next_scheduled)
  else
    sched=$(next_scheduled)
    NEXT=$(($(now) + RETRY))
    [ "$NEXT" -lt "$sched" ] || NEXT=$sched
    log "backup failed; next attempt at $(date -u -d "@$NEXT" +%H:%M:%SZ 2>/dev/null || echo "+${RETRY}s")"
  fi
  publish
}

log "backups daily at $BACKUP_AT UTC into $BACKUP_DIR (keep ${BACKUP_KEEP_DAYS:-7} days)"
NEXT=$(next_scheduled)
publish
start_httpd

if recent_archive; then
  log "an archive from the last 24 h exists; first run at the schedule"
else
  backup_and_plan
fi

# Short sleeps (in the background, so TERM is handled at once) keep the schedule right across host
# suspends and clock changes, keep the published metrics fresh after manual runs, and revive httpd.
while :; do
  if [ -n "$HTTPD_PID" ] && ! kill -0 "$HTTPD_PID" 2>/dev/null; then
    log "WARNING: the metrics server exited; restarting it"
    start_httpd
  fi
  if [ "$(now)" -ge "$NEXT" ]; then
    backup_and_plan
    continue
  fi
  publish
  left=$((NEXT - $(now)))
  [ "$left" -le 30 ] || left=30
  [ "$left" -ge 1 ] || left=1
  sleep "$left" &
  SLEEP_PID=$!
  wait "$SLEEP_PID" || true
  SLEEP_PID=""
done
