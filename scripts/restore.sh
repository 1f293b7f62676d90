#!/usr/bin/env bash
# Pincer restore: verifies a backup archive written by scripts/backup.sh and restores its database
# dump into the database DATABASE_URL names (or the usual PG* variables), in one transaction.
set -euo pipefail
umask 077

usage() {
  cat >&2 <<'EOF'
usage: scripts/restore.sh [--force] [--config-to DIR] ARCHIVE
       scripts/restore.sh --verify ARCHIVE

Restores pincer-YYYYmmddTHHMMSSZ.tar.gz (made by scripts/backup.sh) into the database that
DATABASE_URL (or PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD) names. The archive's checksums are
verified first. The restore runs in a single transaction: it either fully succeeds or changes nothing.

  --force          restore even though the target database already has tables: objects that are
                   in the backup are dropped and recreated (pg_restore --clean --if-exists); objects
                   that are not in the backup are left alone
  --config-to DIR  also extract the archived config folder into DIR (created if missing; must be
                   empty unless --force is given)
  --verify         only verify the archive and print its manifest; touches no database
  -h, --help       this text

Typical: stop core first (docker compose stop core), restore into an empty database, start again.
EOF
}

log() { printf 'restore: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

FORCE=0
VERIFY_ONLY=0
CONFIG_TO=""
ARCHIVE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --verify) VERIFY_ONLY=1 ;;
    --config-to)
      if [ $# -lt 2 ] || [ -z "$2" ]; then
        usage
        die "--config-to needs a folder"
      fi
      CONFIG_TO="$2"
      shift
      ;;
    --config-to=*) CONFIG_TO="${1#--config-to=}" ;;
    -h | --help)
      usage
      exit 0
      ;;
    --) shift && break ;;
    -*)
      usage
      die "unknown option $1"
      ;;
    *)
      if [ -n "$ARCHIVE" ]; then
        usage
        die "only one archive, please (got '$ARCHIVE' and '$1')"
      fi
      ARCHIVE="$1"
      ;;
  esac
  shift
done
if [ $# -gt 0 ]; then
  if [ -n "$ARCHIVE" ] || [ $# -ne 1 ]; then
    usage
    die "only one archive, please"
  fi
  ARCHIVE="$1"
fi
if [ -z "$ARCHIVE" ]; then
  usage
  die "no archive given"
fi
[ -f "$ARCHIVE" ] || die "archive $ARCHIVE does not exist"
[ -r "$ARCHIVE" ] || die "archive $ARCHIVE is not readable"
for tool in pg_restore tar gzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pincer-restore-XXXXXX")"
CHILD=""
cleanup() {
  local status=$?
  trap - EXIT
  if [ -n "$CHILD" ]; then kill "$CHILD" 2>/dev/null || true; fi
  rm -rf "$WORK"
  [ "$status" -eq 0 ] || log "FAILED (exit $status)"
  exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# --- verify the archive --------------------------------------------------------------------------

tar -xzf "$ARCHIVE" -C "$WORK" || die "$ARCHIVE is not a readable .tar.gz (truncated or corrupt?)"
set -- "$WORK"/pincer-*/manifest
if [ $# -ne 1 ] || [ ! -f "$1" ]; then die "$ARCHIVE is not a Pincer backup (no pincer-*/manifest inside)"; fi
TOP="$(dirname "$1")"
MANIFEST="$TOP/manifest"
field() { sed -n "s/^$1=//p" "$MANIFEST" | head -n 1; }
[ "$(field format)" = "pincer-backup/1" ] || die "unknown backup format '$(field format)' in $ARCHIVE"
DUMP="$TOP/$(field dump_file)"
WANT="$(field dump_sha256)"
[ -n "$WANT" ] || die "the manifest has no dump_sha256"
[ -f "$DUMP" ] || die "the archive has no database dump ($(field dump_file))"
GOT="$(sha256sum "$DUMP" | cut -d' ' -f1)"
[ "$GOT" = "$WANT" ] || die "checksum mismatch: the dump's sha256 is $GOT, the manifest says $WANT; the archive is damaged"
if [ -s "$TOP/config.sha256" ]; then
  (cd "$TOP" && sha256sum -c config.sha256 >/dev/null) || die "the archived config does not match its checksums"
fi
pg_restore -l "$DUMP" >/dev/null || die "pg_restore cannot read the dump"
log "archive verified: $(field name), database $(field database), $(field tables) tables, dump $(field dump_size_bytes) bytes (sha256 ok)"

if [ "$VERIFY_ONLY" = 1 ]; then
  cat "$MANIFEST"
  exit 0
fi

if [ -n "$CONFIG_TO" ] && [ -d "$CONFIG_TO" ] && [ "$FORCE" != 1 ] &&
  [ -n "$(find "$CONFIG_TO" -mindepth 1 -maxdepth 1 | head -n 1)" ]; then
  die "--config-to $CONFIG_TO is not empty (use --force to overwrite files there)"
fi

# --- check the target ----------------------------------------------------------------------------

command -v psql >/dev/null || die "psql not found on PATH"
conn=()
if [ -n "${DATABASE_URL:-}" ]; then conn=(-d "$DATABASE_URL"); fi
sql() { psql -X -w -q -At -v ON_ERROR_STOP=1 "${conn[@]}" -c "$1"; }
TARGET_DB="$(sql 'SELECT current_database()')" || die "cannot connect to the target database (DATABASE_URL)"
# user relations anywhere outside the system schemas (public or any other schema)
rels="FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
COUNT="$(sql "SELECT count(*) $rels")" || die "cannot inspect the target database"
if [ "$COUNT" -gt 0 ] && [ "$FORCE" != 1 ]; then
  SAMPLE="$(sql "SELECT string_agg(x, ', ') FROM (SELECT n.nspname || '.' || c.relname AS x $rels ORDER BY 1 LIMIT 5) s")" || true
  die "refusing to restore: database $TARGET_DB is not empty ($COUNT tables/views, e.g. $SAMPLE). Restore into an empty database, or pass --force to drop and replace the objects the backup holds"
fi
# never let pg_restore fall back to printing SQL: always name the database
if [ ${#conn[@]} -eq 0 ]; then conn=(-d "$TARGET_DB"); fi

# --- restore -------------------------------------------------------------------------------------

args=(--no-owner --no-acl --exit-on-error --single-transaction -w)
if [ "$FORCE" = 1 ]; then args+=(--clean --if-exists); fi
if [ "$FORCE" = 1 ]; then
  log "restoring into database $TARGET_DB (--force: backed-up objects are dropped and recreated)"
else
  log "restoring into the empty database $TARGET_DB"
fi
pg_restore "${args[@]}" "${conn[@]}" "$DUMP" &
CHILD=$!
status=0
wait "$CHILD" || status=$?
CHILD=""
[ "$status" -eq 0 ] || die "pg_restore failed (exit $status); the transaction was rolled back, the database is unchanged"

if [ -n "$CONFIG_TO" ]; then
  mkdir -p "$CONFIG_TO" || die "cannot create $CONFIG_TO"
  cp -R "$TOP/config/." "$CONFIG_TO/" || die "cannot write the config into $CONFIG_TO"
  log "config extracted into $CONFIG_TO"
fi
log "OK: $(field name) restored into $TARGET_DB"
