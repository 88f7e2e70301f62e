#!/usr/bin/env bash
# `make run`: builds mediagate, starts it on the embedded store, puts nginx in front of it, adds
# a demo user with a private file, and prints what to try. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${MG_HTTP_PORT:-8080}
AUTH_ADDR=${MG_AUTH_ADDR:-127.0.0.1:9090}
ADMIN_ADDR=${MG_ADMIN_ADDR:-127.0.0.1:9091}
VAR=$PWD/var

cargo build --release --quiet
BIN=$PWD/target/release/mediagate
mkdir -p "$VAR/nginx" "$VAR/media"

# A local admin token, generated once and kept in var/ (never committed).
if [ ! -s "$VAR/admin-token" ]; then
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$VAR/admin-token"
    chmod 600 "$VAR/admin-token"
fi
TOKEN=$(cat "$VAR/admin-token")
# The share-link signing key, likewise.
if [ ! -s "$VAR/link-key" ]; then
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$VAR/link-key"
    chmod 600 "$VAR/link-key"
fi

export MEDIAGATE__SERVER__AUTH_LISTEN=$AUTH_ADDR
export MEDIAGATE__SERVER__ADMIN_LISTEN=$ADMIN_ADDR
export MEDIAGATE__STORE__URL=embedded:$VAR/mediagate.db
export MEDIAGATE__STORAGE__ROOT=$VAR/media
export MEDIAGATE__ADMIN__TOKEN_FILE=$VAR/admin-token
MEDIAGATE__LINKS__SECRET=$(cat "$VAR/link-key")
export MEDIAGATE__LINKS__SECRET

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN" serve >"$VAR/mediagate.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -fsS "http://$ADMIN_ADDR/readyz" >/dev/null 2>&1 && break
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "mediagate did not start:" >&2; cat "$VAR/mediagate.log" >&2; exit 1
    fi
    sleep 0.1
done

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
"$BIN" nginx-config --listen "127.0.0.1:$HTTP_PORT" > "$VAR/nginx/nginx.conf"
"$NGINX" -p "$VAR/nginx" -c "$VAR/nginx/nginx.conf" -e "$VAR/nginx/startup.log" &
pids+=($!)
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && break
    if ! kill -0 "${pids[1]}" 2>/dev/null; then
        echo "nginx did not start:" >&2; cat "$VAR/nginx/startup.log" "$VAR/nginx/error.log" 2>/dev/null >&2; exit 1
    fi
    sleep 0.1
done

admin() { curl -fsS -H "Authorization: Bearer $TOKEN" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

admin -X PUT "http://$ADMIN_ADDR/v1/users/demo" >/dev/null
UPLOAD=$(printf 'Hello from a private file, served by nginx after mediagate said yes.\n' |
    admin -X POST -H 'Content-Type: text/plain' --data-binary @- \
        "http://$ADMIN_ADDR/v1/users/demo/files?filename=hello.txt")
URL=$(echo "$UPLOAD" | field url)
FILE_ID=$(echo "$UPLOAD" | field file_id)
LINK=$(admin -X POST -H 'Content-Type: application/json' -d '{"ttl_seconds": 3600}' \
    "http://$ADMIN_ADDR/v1/files/$FILE_ID/links" | field url)
SESSION=$(admin -X POST -H 'Content-Type: application/json' \
    -d '{"user_id": "demo", "ttl_seconds": 86400}' "http://$ADMIN_ADDR/v1/sessions" | field session_id)

cat <<EOT

mediagate is running: nginx on http://127.0.0.1:$HTTP_PORT, auth listener on $AUTH_ADDR,
admin API on $ADMIN_ADDR (store: var/mediagate.db, files: var/media, logs: var/*.log).

A private file of user "demo", with demo's session (200, the file):
  curl -i 'http://127.0.0.1:$HTTP_PORT$URL' -H 'Cookie: mediagate_session=$SESSION'

The same URL without a session (401):
  curl -i 'http://127.0.0.1:$HTTP_PORT$URL'

A share link to it, valid for an hour, no session needed (200):
  curl -i 'http://127.0.0.1:$HTTP_PORT$LINK'

Kill the URL (and the link) at once; both then get 403:
  curl -H "Authorization: Bearer \$(cat var/admin-token)" -X POST http://$ADMIN_ADDR/v1/files/$FILE_ID/rotate-token

The admin API (token in var/admin-token):
  curl -H "Authorization: Bearer \$(cat var/admin-token)" -X PUT http://$ADMIN_ADDR/v1/users/alice

Press Ctrl-C to stop.
EOT
wait -n "${pids[@]}"
