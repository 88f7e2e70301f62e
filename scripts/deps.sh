#!/usr/bin/env bash
# Makes sure nginx (with the auth_request module), redis-server and Node.js are installed. As root with
# apt it installs what is missing; otherwise it prints the exact command and fails.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have nginx || missing+=(nginx)
have redis-server || missing+=(redis-server)
# The session-source tests run a real Express app.
have node || missing+=(nodejs npm)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]} with apt-get…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts the packaged nginx on port 80; mediagate runs its own instances.
    if command -v service >/dev/null; then service nginx stop >/dev/null 2>&1 || true; fi
    exit 0
fi

echo "mediagate needs: ${missing[*]}" >&2
echo "Install with:   sudo apt-get install -y ${missing[*]}" >&2
exit 1
