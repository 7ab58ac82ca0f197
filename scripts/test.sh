#!/usr/bin/env bash
# Install everything the tests need, then run lint, types and the whole test suite.
# Idempotent; safe on a fresh machine (as root it installs redis-server via apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v curl >/dev/null 2>&1 || missing+=(curl)  # the README and examples/README shell blocks (tests/test_readme.py)
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
# The upgrade also brings `pip install --group` (PEP 735 dependency groups: pip >= 25.1).
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[asgi,redis,server,fastapi,flask,django,litestar]' \
  --group test --group lint --group bench gunicorn flask-jwt-extended

# atheris builds from source on some machines; its harness test skips when it is absent.
.venv/bin/python -m pip install -q atheris >/dev/null 2>&1 || echo "atheris unavailable; the atheris harness test will skip"

# The interop tests run a real OpenID provider (npm oidc-provider) when node is present.
if [ -x scripts/install-interop.sh ]; then scripts/install-interop.sh || echo "interop install failed; those tests will skip"; fi

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy --strict"; .venv/bin/mypy

# pytest exits 5 when it ran no test: that is a failure here, never a silent pass.
run_pytest() {
  local status=0
  "$@" || status=$?
  if [ "$status" = 5 ]; then echo "pytest ran no test: $*" >&2; return 1; fi
  return "$status"
}

# The order is random (pytest-randomly): an order dependence shows up, and the run's last lines
# say "random order: replay with -p randomly --randomly-seed=N" (tests/conftest.py): pass that
# to this script to replay the order.
echo "== pytest ($(.venv/bin/python -V), random order)"
failed=0
run_pytest .venv/bin/python -m pytest -q -p no:cacheprovider "$@" || failed=1

# The same core, attack and integration tests on the other supported Pythons, each in a venv
# of its own with only what those tests need. A version that cannot be found is skipped, said.
find_python() {
  local version=$1 candidate root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$root"/versions/"$version"*/bin/python "$(command -v "python$version" || true)"; do
    if [ -x "$candidate" ] && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

for version in 3.12 3.13; do
  if ! python=$(find_python "$version"); then
    echo "== python$version not found (pyenv or PATH): its run of tests/core, tests/attacks, tests/integrations is skipped"
    continue
  fi
  venv=".venv-$version"
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  # A new venv's pip is the one its Python bundles (3.12.1: 23.2), too old for --group.
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$venv/bin/python" -m pip install -q -e '.[fastapi,flask,django,litestar]' --group test-core
  echo "== pytest ($("$venv/bin/python" -V), random order): tests/core tests/attacks tests/integrations"
  run_pytest "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/core tests/attacks tests/integrations || failed=1
done
exit "$failed"
