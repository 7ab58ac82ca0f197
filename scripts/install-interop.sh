#!/usr/bin/env bash
# Install the node side of the interop tests (tests/interop/op: npm oidc-provider, oauth4webapi,
# dpop) exactly as package-lock.json pins it. Idempotent: does nothing when node is absent or
# when node_modules already matches the lock file. Needs the npm registry on first run.
set -euo pipefail
cd "$(dirname "$0")/.."

OP=tests/interop/op
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-interop: node/npm not found; the interop tests will skip"
  exit 0
fi

STAMP="$OP/node_modules/.interop-lock.sha256"
want=$(sha256sum "$OP/package-lock.json" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "install-interop: $OP/node_modules is up to date"
  exit 0
fi

echo "install-interop: npm ci --prefix $OP"
npm ci --prefix "$OP" --no-audit --no-fund --loglevel=error
echo "$want" > "$STAMP"
