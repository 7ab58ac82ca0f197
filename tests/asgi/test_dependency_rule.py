"""The dependency rule (STYLE §1), checked by walking imports with ast.

core/ is sans-I/O: no web framework, no HTTP client, no Redis, no adapter, no store. Only
keys/fetch.py talks HTTP and only stores/redis.py (and its pure helper) knows Redis. The
check follows package-internal imports transitively, so core cannot reach httpx via a detour.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import jwt_middleware

PACKAGE = Path(jwt_middleware.__file__).parent
ROOT = "jwt_middleware"
HTTP_CLIENTS = ("httpx", "requests", "urllib3", "aiohttp", "http.client", "urllib.request")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def path_of(module: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@cache
def imports_of(path: Path) -> frozenset[str]:
    """Every module named by an import statement anywhere in the file (also inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            found.add(base)
            # "from . import x" / "from .keys import cache" may name submodules
            found.update(f"{base}.{alias.name}" for alias in node.names if path_of(f"{base}.{alias.name}"))
    return frozenset(found)


def closure(path: Path) -> dict[str, str]:
    """Every module reachable from ``path`` through package-internal imports → who imported it."""
    seen: dict[str, str] = {}
    stack = [path]
    visited: set[Path] = set()
    while stack:
        current = stack.pop()
        if current in visited:
            continue
        visited.add(current)
        for name in imports_of(current):
            seen.setdefault(name, module_name(current))
            if name.startswith(ROOT):
                target = path_of(name)
                if target is not None:
                    stack.append(target)
    return seen


def is_within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


CORE_FILES = sorted((PACKAGE / "core").glob("*.py"))
FORBIDDEN_IN_CORE = (
    "starlette", "fastapi", "redis", "asyncio", "socket", "threading", *HTTP_CLIENTS,
    f"{ROOT}.asgi", f"{ROOT}.wsgi", f"{ROOT}.authenticator", f"{ROOT}.stores", f"{ROOT}._drive",
    f"{ROOT}.keys.fetch", f"{ROOT}.keys.loader", f"{ROOT}.starlette_user", f"{ROOT}.integrations",
)


def test_core_files_exist() -> None:
    assert {p.name for p in CORE_FILES} >= {"pipeline.py", "extract.py", "gate.py", "verify.py", "claims.py"}


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_module_imports_no_io_framework_or_adapter(path: Path) -> None:
    reached = closure(path)
    bad = {name: by for name, by in reached.items() if is_within(name, FORBIDDEN_IN_CORE)}
    assert not bad, f"{path.name} reaches {bad} (module → importer)"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_does_not_import_the_adapters_directly(path: Path) -> None:
    direct = imports_of(path)
    assert not any(is_within(n, (f"{ROOT}.asgi", f"{ROOT}.wsgi", f"{ROOT}.authenticator")) for n in direct)


def _all_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_only_keys_fetch_imports_an_http_client() -> None:
    importers = {module_name(p) for p in _all_files() if any(is_within(n, HTTP_CLIENTS) for n in imports_of(p))}
    # the key sets' fetch, and the Token Status Lists' (revocation), each with its caps and timeouts
    assert importers <= {f"{ROOT}.keys.fetch", f"{ROOT}.revocation.status_list_fetch"}, importers


def test_only_the_redis_store_imports_redis() -> None:
    importers = {module_name(p) for p in _all_files() if any(is_within(n, ("redis",)) for n in imports_of(p))}
    assert importers <= {f"{ROOT}.stores.redis", f"{ROOT}.revocation.redis"}, importers


def test_walker_resolves_relative_and_function_level_imports() -> None:
    """The checker itself: relative imports resolve, and an import inside a function counts."""
    pipeline = imports_of(PACKAGE / "core" / "pipeline.py")
    assert f"{ROOT}.core.extract" in pipeline and f"{ROOT}.keys.cache" in pipeline
    assert f"{ROOT}.keys.sources" in imports_of(PACKAGE / "config.py")  # also imported inside a method
    assert "httpx" in imports_of(PACKAGE / "keys" / "fetch.py")
