#!/usr/bin/env bash
# A self-signed certificate for a first run (replace with a real one: put fullchain.pem and
# privkey.pem in nginx/certs/). Usage: scripts/make-cert.sh [DIR] [HOSTNAME]
set -euo pipefail
dir=${1:-"$(dirname "$0")/../nginx/certs"}
host=${2:-localhost}
mkdir -p "$dir"
if [[ -s "$dir/fullchain.pem" && -s "$dir/privkey.pem" ]]; then
  echo "certificate already present in $dir (delete it to make a new one)" >&2
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
  -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/privkey.pem" -out "$dir/fullchain.pem" 2>/dev/null
chmod 600 "$dir/privkey.pem"
echo "self-signed certificate for $host written to $dir" >&2
