#!/usr/bin/env bash
# Pincer backup: one dated archive with a pg_dump (custom format) of the database and a copy of the
# config folder, plus a manifest; prunes archives older than BACKUP_KEEP_DAYS after a successful run;
# records the outcome for Prometheus in BACKUP_DIR/metrics (and BACKUP_DIR/last_success).
#
#   DATABASE_URL        postgres://user:pass@host:5432/db (or the usual PG* variables when unset)
#   PINCER_CONFIG_DIR   config folder to include (default ./config); .env / .env.* are never included
#   BACKUP_DIR          where archives go (default ./backups)
#   BACKUP_KEEP_DAYS    keep archives this many days (default 7)
#   BACKUP_LOCK_WAIT    how long pg_dump waits for a table lock before failing (default 120s)
#
# Needs bash, pg_dump/pg_restore, tar, gzip, sha256sum, find (GNU or busybox). Exit status is
# non-zero on any failure; no partial archive is ever left under its final name.
set -euo pipefail
umask 077

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

BACKUP_DIR="${BACKUP_DIR:-./backups}"
CONFIG_DIR="${PINCER_CONFIG_DIR:-./config}"
KEEP_DAYS="${BACKUP_KEEP_DAYS:-7}"
LOCK_WAIT="${BACKUP_LOCK_WAIT:-120s}"
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

START="$(date -u +%s)"
STAMP="$(date -u -d "@$START" +%Y%m%dT%H%M%SZ 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)"
NAME="pincer-$STAMP"
WORK=""
PARTIAL=""
CHILD=""
DONE=0
METRICS_READY=0

# --- metrics -------------------------------------------------------------------------------------

# the value of one sample in the current metrics file (empty when absent)
metric_value() {
  [ -f "$BACKUP_DIR/metrics" ] || return 0
  sed -n "s/^$1 \\([0-9.eE+-]*\\)\$/\\1/p" "$BACKUP_DIR/metrics" | tail -n 1
}

# write_metrics SUCCESS_TS DURATION SIZE FAILURE_TS (empty = leave the sample out)
write_metrics() {
  local tmp="$BACKUP_DIR/.metrics.tmp.$$"
  {
    if [ -n "$1" ]; then
      echo '# HELP pincer_backup_last_success_timestamp_seconds Unix time the last successful backup finished.'
      echo '# TYPE pincer_backup_last_success_timestamp_seconds gauge'
      echo "pincer_backup_last_success_timestamp_seconds $1"
    fi
    if [ -n "$2" ]; then
      echo '# HELP pincer_backup_last_duration_seconds How long the last successful backup took.'
      echo '# TYPE pincer_backup_last_duration_seconds gauge'
      echo "pincer_backup_last_duration_seconds $2"
    fi
    if [ -n "$3" ]; then
      echo '# HELP pincer_backup_last_size_bytes Size of the last successful backup archive.'
      echo '# TYPE pincer_backup_last_size_bytes gauge'
      echo "pincer_backup_last_size_bytes $3"
    fi
    if [ -n "$4" ]; then
      echo '# HELP pincer_backup_last_failure_timestamp_seconds Unix time the last failed backup attempt ended.'
      echo '# TYPE pincer_backup_last_failure_timestamp_seconds gauge'
      echo "pincer_backup_last_failure_timestamp_seconds $4"
    fi
  } >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$BACKUP_DIR/metrics"
}

cleanup() {
  local status=$?
  trap - EXIT
  if [ -n "$CHILD" ]; then kill "$CHILD" 2>/dev/null || true; fi
  if [ -n "$PARTIAL" ]; then rm -f "$PARTIAL"; fi
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  if [ "$DONE" != 1 ]; then
    [ "$status" -ne 0 ] || status=1
    if [ "$METRICS_READY" = 1 ]; then
      if write_metrics "$(metric_value pincer_backup_last_success_timestamp_seconds)" \
        "$(metric_value pincer_backup_last_duration_seconds)" \
        "$(metric_value pincer_backup_last_size_bytes)" "$(date -u +%s)" 2>/dev/null; then
        log "FAILED after $(($(date -u +%s) - START))s (recorded in $BACKUP_DIR/metrics); no archive written"
      else
        rm -f "$BACKUP_DIR/.metrics.tmp.$$"
        log "FAILED; could not even record the failure in $BACKUP_DIR/metrics"
      fi
    else
      log "FAILED before $BACKUP_DIR was usable; no archive written, failure not recorded"
    fi
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# Run a command in the background and wait for it, so a TERM reaches us (and it) at once.
run() {
  "$@" &
  CHILD=$!
  local status=0
  wait "$CHILD" || status=$?
  CHILD=""
  return "$status"
}

# --- checks --------------------------------------------------------------------------------------

mkdir -p "$BACKUP_DIR" || die "cannot create BACKUP_DIR $BACKUP_DIR"
[ -w "$BACKUP_DIR" ] || die "BACKUP_DIR $BACKUP_DIR is not writable"
METRICS_READY=1

case "$KEEP_DAYS" in
  '' | *[!0-9]*) die "BACKUP_KEEP_DAYS must be a whole number of days (got '$KEEP_DAYS')" ;;
esac
[ "$KEEP_DAYS" -ge 1 ] || die "BACKUP_KEEP_DAYS must be at least 1 (got $KEEP_DAYS)"
for tool in pg_dump pg_restore tar gzip sha256sum find; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
[ -d "$CONFIG_DIR" ] || die "config folder $CONFIG_DIR (PINCER_CONFIG_DIR) does not exist"
if [ ! -r "$CONFIG_DIR" ] || [ ! -x "$CONFIG_DIR" ]; then die "config folder $CONFIG_DIR is not readable"; fi

# one backup at a time per BACKUP_DIR
if command -v flock >/dev/null; then
  exec 9>"$BACKUP_DIR/.lock"
  flock -n 9 || die "another backup is already running in $BACKUP_DIR"
fi

FINAL="$BACKUP_DIR/$NAME.tar.gz"
# names have one-second resolution: a second run within the same second waits for the next one
for _ in 1 2 3; do
  [ -e "$FINAL" ] || break
  sleep 1
  START="$(date -u +%s)"
  STAMP="$(date -u -d "@$START" +%Y%m%dT%H%M%SZ 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)"
  NAME="pincer-$STAMP"
  FINAL="$BACKUP_DIR/$NAME.tar.gz"
done
[ ! -e "$FINAL" ] || die "$FINAL already exists"

# leftovers of a run that was killed hard (SIGKILL, power loss)
find "$BACKUP_DIR" -maxdepth 1 \( -name '.work-pincer-*' -o -name '.pincer-*.partial' \) -mmin +1440 \
  -exec rm -rf {} + 2>/dev/null || true

WORK="$(mktemp -d "$BACKUP_DIR/.work-pincer-XXXXXX")"
STAGE="$WORK/$NAME"
mkdir -p "$STAGE/config"

# --- database ------------------------------------------------------------------------------------

dump_args=(-Fc -w --lock-wait-timeout="$LOCK_WAIT" -f "$STAGE/pincer.dump")
if [ -n "${DATABASE_URL:-}" ]; then dump_args+=(-d "$DATABASE_URL"); fi
log "dumping the database (pg_dump -Fc)"
run pg_dump "${dump_args[@]}" || die "pg_dump failed (see above)"

# read the dump back: proves it is complete and tells us what it holds
pg_restore -l "$STAGE/pincer.dump" >"$WORK/toc" || die "the dump cannot be read back by pg_restore"
DBNAME="$(sed -n 's/^;[[:space:]]*dbname: //p' "$WORK/toc" | head -n 1)"
SERVER_VERSION="$(sed -n 's/^;[[:space:]]*Dumped from database version: //p' "$WORK/toc" | head -n 1)"
TABLES="$(grep -c ' TABLE DATA ' "$WORK/toc" || true)"
[ -n "$DBNAME" ] || die "the dump has no database name in its header"

# --- config --------------------------------------------------------------------------------------

# every file except secrets (.env, .env.*; .env.example is a template without secrets)
(cd "$CONFIG_DIR" && find . \( -name .env -o \( -name '.env.*' ! -name .env.example \) \) -prune \
  -o \( -type f -o -type l \) -print) >"$WORK/config.list" || die "cannot list $CONFIG_DIR"
CONFIG_FILES=0
while IFS= read -r f; do
  f="${f#./}"
  mkdir -p "$STAGE/config/$(dirname "$f")"
  cp -RL "$CONFIG_DIR/$f" "$STAGE/config/$f" || die "cannot read $CONFIG_DIR/$f"
  CONFIG_FILES=$((CONFIG_FILES + 1))
done <"$WORK/config.list"
(cd "$STAGE" && find config -type f -exec sha256sum {} +) >"$STAGE/config.sha256" ||
  die "cannot checksum the config copy"

# --- manifest and archive ------------------------------------------------------------------------

size_of() { wc -c <"$1" | tr -d ' '; }
DUMP_SIZE="$(size_of "$STAGE/pincer.dump")"
DUMP_SHA="$(sha256sum "$STAGE/pincer.dump" | cut -d' ' -f1)"
CONFIG_SIZE=0
while IFS= read -r f; do
  CONFIG_SIZE=$((CONFIG_SIZE + $(size_of "$f")))
done < <(find "$STAGE/config" -type f)
cat >"$STAGE/manifest" <<EOF
format=pincer-backup/1
name=$NAME
created_at=$(date -u -d "@$START" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
database=$DBNAME
server_version=$SERVER_VERSION
pg_dump_version=$(pg_dump --version)
tables=$TABLES
dump_file=pincer.dump
dump_size_bytes=$DUMP_SIZE
dump_sha256=$DUMP_SHA
config_files=$CONFIG_FILES
config_size_bytes=$CONFIG_SIZE
config_sha256_file=config.sha256
EOF

PARTIAL="$BACKUP_DIR/.$NAME.tar.gz.partial"
log "writing the archive"
run tar -czf "$PARTIAL" -C "$WORK" "$NAME" || die "cannot write the archive (disk full?)"
gzip -t "$PARTIAL" || die "the written archive does not verify"
sync "$PARTIAL" 2>/dev/null || sync
chmod 600 "$PARTIAL"
mv "$PARTIAL" "$FINAL" || die "cannot rename the archive into place"
PARTIAL=""
SIZE="$(size_of "$FINAL")"

# --- success: metrics, then retention ------------------------------------------------------------

END="$(date -u +%s)"
write_metrics "$END" "$((END - START))" "$SIZE" \
  "$(metric_value pincer_backup_last_failure_timestamp_seconds)" || die "cannot write $BACKUP_DIR/metrics"
if ! { echo "$END" >"$BACKUP_DIR/.last_success.tmp.$$" && chmod 644 "$BACKUP_DIR/.last_success.tmp.$$" &&
  mv -f "$BACKUP_DIR/.last_success.tmp.$$" "$BACKUP_DIR/last_success"; }; then
  rm -f "$BACKUP_DIR/.last_success.tmp.$$"
  die "cannot write $BACKUP_DIR/last_success"
fi
DONE=1
log "OK $FINAL ($SIZE bytes; database $DBNAME, $TABLES tables, $CONFIG_FILES config files; $((END - START))s)"

# prune only now that a new archive exists; never the one just written
find "$BACKUP_DIR" -maxdepth 1 -type f -name 'pincer-*.tar.gz' -mmin "+$((KEEP_DAYS * 1440))" |
  while IFS= read -r old; do
    [ "$old" = "$FINAL" ] && continue
    if rm -f "$old"; then log "pruned $old (older than $KEEP_DAYS days)"; else log "WARNING: cannot prune $old"; fi
  done || log "WARNING: pruning old archives failed; the new archive is fine"
echo "$FINAL"
