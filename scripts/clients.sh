#!/usr/bin/env bash
# Installs the real framework clients the session-source tests run against, pinned:
# the Express app's npm packages (from package-lock.json) and a Python venv with Django,
# django-redis and PyJWT. Re-runs only when the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "node is missing: apt-get install nodejs npm" >&2; exit 1; }
express=tests/clients/express
if [ ! -f "$express/node_modules/.stamp" ] || [ "$express/package-lock.json" -nt "$express/node_modules/.stamp" ]; then
    echo "Installing the Express test client (npm ci)…"
    (cd "$express" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$express/node_modules/.stamp"
fi

venv=target/clients-venv
reqs=tests/clients/requirements.txt
if [ ! -f "$venv/.stamp" ] || [ "$reqs" -nt "$venv/.stamp" ]; then
    echo "Installing the Python test clients (Django, django-redis, PyJWT)…"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
    touch "$venv/.stamp"
fi

# The Python package (clients/python), editable with its Django extra, and its pinned test tools.
pyvenv=target/python-client-venv
pyreqs=clients/python/requirements-test.txt
if [ ! -f "$pyvenv/.stamp" ] || [ "$pyreqs" -nt "$pyvenv/.stamp" ] || [ clients/python/pyproject.toml -nt "$pyvenv/.stamp" ]; then
    echo "Installing the Python package's test environment (httpx, Django, pytest, mypy)…"
    python3 -m venv "$pyvenv"
    "$pyvenv/bin/pip" install --quiet --disable-pip-version-check -e 'clients/python[django]' -r "$pyreqs"
    touch "$pyvenv/.stamp"
fi
