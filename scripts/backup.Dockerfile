# The backup job's image: Postgres's own client tools (same major version as the server) plus what
# the scripts use, installed at build time so the job starts without network access.
# syntax=docker/dockerfile:1
FROM postgres:16-alpine
RUN apk add --no-cache bash busybox-extras
COPY scripts/backup.sh scripts/restore.sh scripts/backup-cron.sh /pincer/scripts/
ENTRYPOINT ["/bin/sh", "/pincer/scripts/backup-cron.sh"]
