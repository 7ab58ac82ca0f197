#!/usr/bin/env bash
# Install the node side of the interop tests (tests/interop/op: npm oidc-provider, oauth4webapi,
# dpop; tests/interop/statuslist: @sd-jwt/jwt-status-list, jose) exactly as each package-lock.json pins it. Idempotent: does nothing when node is absent or
# when node_modules already matches the lock file. Needs the npm registry on first run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-interop: node/npm not found; the interop tests will skip"
  exit 0
fi

for dir in tests/interop/op tests/interop/statuslist; do
  stamp="$dir/node_modules/.interop-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "install-interop: $dir/node_modules is up to date"
    continue
  fi
  echo "install-interop: npm ci --prefix $dir"
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
done
