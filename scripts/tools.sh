#!/usr/bin/env bash
# Installs the test tools that come from crates.io, pinned, into target/tools: the S3 server the
# object-storage tests run against (s3s-fs, which checks every request's signature). Re-runs
# only when the pinned version is not the one installed.
set -euo pipefail
cd "$(dirname "$0")/.."

S3S_VERSION=0.14.1
tools=target/tools
if [ ! -x "$tools/bin/s3s-fs" ] || ! "$tools/bin/s3s-fs" --version 2>/dev/null | grep -q "$S3S_VERSION"; then
    echo "Installing the S3 test server (s3s-fs $S3S_VERSION, a few minutes)…"
    cargo install --quiet --locked --root "$tools" s3s-fs --version "$S3S_VERSION" --features binary
fi
