#!/usr/bin/env bash
# Install everything the tests need, then run lint, types and the whole test suite.
# Idempotent; safe on a fresh machine (as root it installs redis-server via apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]}" >&2
    exit 1
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,redis,server,fastapi,flask,django,litestar,bench]' gunicorn flask-jwt-extended playwright

# atheris builds from source on some machines; its harness test skips when it is absent.
.venv/bin/python -m pip install -q atheris >/dev/null 2>&1 || echo "atheris unavailable; the atheris harness test will skip"

# The interop tests run a real OpenID provider (npm oidc-provider) when node is present.
if [ -x scripts/install-interop.sh ]; then scripts/install-interop.sh || echo "interop install failed; those tests will skip"; fi

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
