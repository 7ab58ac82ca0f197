"""The distribution as a user installs it.

The sdist and wheel are built once, with ``python -m build`` (the sdist, then the wheel from the
sdist, as an installer would from PyPI), from a copy of the work tree's files (git's tracked and
untracked, not ignored). Their metadata must carry the PEP 639 licence, the classifiers, the
extras without test tools, ``py.typed`` and the version of ``jwt_middleware/_version.py``.

Then the wheel is installed with its own dependencies, plus Flask and Django, into a venv of its
own: a WSGI-only user's install. In it starlette must be absent, and a plain WSGI app, a Flask
app, a Django WSGI app and ``jwt-middleware verify`` must work, while ``JWTMiddleware`` says which
extra it needs. This is the suite's one use of the package index; it skips only when the index
cannot be reached at all.
"""

from __future__ import annotations

import email.parser
import functools
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import Key

import jwt_middleware
from jwt_middleware.testing import make_key, mint, public_jwks

ROOT = Path(__file__).resolve().parent.parent
DIST_NAME = "asgi-wsgi-jwt-guard"
ISSUER = "https://issuer.test"
PYTHONS = ("3.11", "3.12", "3.13")
FRAMEWORKS = ("Django", "FastAPI", "Flask", "Litestar")
EXTRAS = {"asgi", "redis", "server", "fastapi", "flask", "django", "litestar"}
#: in a dependency group and also a runtime extra's dependency: the tests run the real server and store
RUNTIME_IN_GROUPS = {"uvicorn", "redis"}
#: pip's default index; the suite's only network use is here
INDEX_HOST = ("pypi.org", 443)
PIP = (sys.executable, "-m", "pip")

pytestmark = pytest.mark.timeout(300)


@functools.cache
def _require_index() -> None:
    """Skip, saying why, when the package index cannot be reached at all (no network)."""
    try:
        socket.create_connection(INDEX_HOST, timeout=5).close()
    except OSError as exc:
        pytest.skip(
            f"no network ({INDEX_HOST[0]}: {type(exc).__name__}): the build backend and the bare "
            "venv's dependencies cannot be installed"
        )


def _clean_env() -> dict[str, str]:
    """This environment less PYTHONPATH and the other PYTHON* variables: a path into a source
    tree would let the bare venv import the package (or pip find its egg-info) without the wheel."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run to completion; a failure shows the command's own output."""
    kwargs.setdefault("env", _clean_env())
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240, **kwargs)
    assert result.returncode == 0, f"{argv[:4]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


# --- the build -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path
    metadata: Message

    def requires(self) -> list[tuple[str, str | None]]:
        """(project name, extra or None) of every Requires-Dist."""
        out = []
        for line in self.metadata.get_all("Requires-Dist") or []:
            extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", line)
            out.append((_name(line), extra.group(1) if extra else None))
        return out


def _copy_work_tree(dest: Path) -> None:
    """The files a clean clone plus the work in progress holds; no stale egg-info or build/."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    for relative in filter(None, listed.stdout.split("\0")):
        source = ROOT / relative
        if source.is_file():
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    _require_index()
    source = tmp_path_factory.mktemp("source")
    out = tmp_path_factory.mktemp("dist")
    _copy_work_tree(source)
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)])
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return Dist(wheel, sdist, metadata)


def test_metadata_declares_the_spdx_license_and_python_versions(dist: Dist) -> None:
    version = tuple(map(int, dist.metadata["Metadata-Version"].split(".")))
    assert version >= (2, 4)  # the first with License-Expression (PEP 639)
    assert dist.metadata["License-Expression"] == "MIT"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    assert dist.metadata["License"] is None  # PEP 639: the expression replaces the free text
    assert dist.metadata["Requires-Python"] == ">=3.11"
    assert dist.metadata["Name"] == DIST_NAME


def test_classifiers_exist_and_name_pythons_frameworks_and_typing(dist: Dist) -> None:
    from trove_classifiers import classifiers as known

    declared = dist.metadata.get_all("Classifier") or []
    assert set(declared) <= known, set(declared) - known  # PyPI refuses an upload with an unknown one
    for version in PYTHONS:
        assert f"Programming Language :: Python :: {version}" in declared
    for framework in FRAMEWORKS:
        assert f"Framework :: {framework}" in declared
    assert "Typing :: Typed" in declared
    # PEP 639: a licence classifier next to License-Expression is an error for the index
    assert not [c for c in declared if c.startswith("License ::")]


def test_extras_hold_no_test_tools_and_starlette_only_where_asgi_is_used(dist: Dist) -> None:
    assert set(dist.metadata.get_all("Provides-Extra") or []) == EXTRAS
    requires = dist.requires()
    base = {name for name, extra in requires if extra is None}
    assert base == {"joserfc", "cachetools", "httpx"}
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    tools = {_name(r) for group in groups.values() for r in group if isinstance(r, str)}
    tools -= RUNTIME_IN_GROUPS
    assert {"pytest", "mypy", "ruff", "playwright", "pyjwt", "build"} <= tools
    assert not tools & {name for name, _ in requires}
    with_starlette = {extra for name, extra in requires if name == "starlette"}
    assert with_starlette == {"asgi", "server", "fastapi", "litestar"}
    assert ("uvicorn", "server") in requires  # the demo's server


def test_license_file_and_py_typed_ship_in_wheel_and_sdist(dist: Dist) -> None:
    license_text = (ROOT / "LICENSE").read_bytes()
    assert b"MIT License" in license_text
    with zipfile.ZipFile(dist.wheel) as archive:
        names = archive.namelist()
        [licence] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(licence) == license_text
        assert "jwt_middleware/py.typed" in names
        assert "jwt_middleware/_version.py" in names
    with tarfile.open(dist.sdist) as archive:
        top = f"{dist.sdist.name.removesuffix('.tar.gz')}/"
        members = archive.getnames()
        assert top + "LICENSE" in members
        assert top + "jwt_middleware/py.typed" in members
        pkg_info = archive.extractfile(top + "PKG-INFO")
        assert pkg_info is not None
        assert "License-Expression: MIT" in pkg_info.read().decode()


def test_version_has_one_source(dist: Dist) -> None:
    """``__version__`` (from ``_version.py``) is the version the build wrote into the metadata."""
    assert dist.metadata["Version"] == jwt_middleware.__version__
    assert dist.wheel.name.startswith(f"asgi_wsgi_jwt_guard-{jwt_middleware.__version__}-")


def test_dependency_groups_install_with_pip(tmp_path: Path) -> None:
    """What scripts/test.sh installs: pip reads the groups, test including test-core."""
    _require_index()
    report = tmp_path / "report.json"
    groups = ["--group", "test", "--group", "lint", "--group", "bench"]
    _run(
        [
            *PIP,
            "install",
            "-q",
            "--dry-run",
            "--ignore-installed",
            "--no-deps",
            *groups,
            "--report",
            str(report),
        ],
        cwd=ROOT,
    )
    names = {_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert {"pytest", "hypothesis", "redis"} <= names  # from test-core, through include-group
    assert {"playwright", "build", "mypy", "ruff", "types-cachetools", "pyjwt"} <= names


# --- a WSGI-only install, without starlette --------------------------------------------------
PROBE = r"""
import importlib.metadata, importlib.util, json, sys
from wsgiref.util import setup_testing_defaults

import jwt_middleware
from jwt_middleware import Authenticator, Config, Issuer, StaticKeys, WSGIJWTMiddleware

face, jwks_path, token = sys.argv[1:]
auth = Authenticator(Config(
    issuers=[Issuer("https://issuer.test", algorithms=("ES256",), keys=StaticKeys(open(jwks_path).read()))],
    audience="api",
))


def call(wsgi_app, authorization, path="/me"):
    environ = {}
    setup_testing_defaults(environ)
    environ["PATH_INFO"] = path
    if authorization:
        environ["HTTP_AUTHORIZATION"] = authorization
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=int(status.split()[0]), headers={k.lower(): v for k, v in headers})

    body = b"".join(wsgi_app(environ, start_response)).decode()
    return {"status": seen["status"], "challenge": seen["headers"].get("www-authenticate", ""), "body": body}


def plain_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["jwt_middleware.identity"].subject.encode()]


def flask_app():
    from flask import Flask
    from jwt_middleware.integrations.flask import JWTFlask, current_identity

    app = Flask("probe")

    @app.get("/me")
    def me():
        return current_identity().subject

    JWTFlask(app, auth)
    return app


def django_app():
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    def me(request):
        return HttpResponse(request.user.identity)

    sys.modules["__main__"].urlpatterns = [path("me", me)]
    settings.configure(
        SECRET_KEY="probe-" + "x" * 40, ALLOWED_HOSTS=["*"], ROOT_URLCONF="__main__",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        MIDDLEWARE=["jwt_middleware.integrations.django.JWTAuthenticationMiddleware"],
        JWT_MIDDLEWARE_AUTHENTICATOR=auth,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


result = {}
if face == "asgi":
    try:
        from jwt_middleware import JWTMiddleware

        JWTMiddleware(plain_app, auth)
    except ModuleNotFoundError as missing:
        result = {"error": str(missing), "name": missing.name}
elif face == "version":
    result = {"version": jwt_middleware.__version__, "metadata": importlib.metadata.version("asgi-wsgi-jwt-guard")}
else:
    wsgi_app = {"wsgi": lambda: WSGIJWTMiddleware(plain_app, auth), "flask": flask_app, "django": django_app}[face]()
    result = {"valid": call(wsgi_app, "Bearer " + token), "missing": call(wsgi_app, None)}
result["package_file"] = jwt_middleware.__file__
result["starlette_loaded"] = "starlette" in sys.modules
result["starlette_installed"] = importlib.util.find_spec("starlette") is not None
print(json.dumps(result))
"""


@dataclass(frozen=True)
class BareVenv:
    """A venv holding the wheel, its dependencies, Flask and Django: no starlette."""

    bin: Path
    probe: Path
    jwks: Path
    key: Key

    def probe_json(self, face: str, token: str = "") -> dict[str, Any]:
        out = _run([str(self.bin / "python"), str(self.probe), face, str(self.jwks), token]).stdout
        parsed: dict[str, Any] = json.loads(out)
        assert parsed.pop("package_file").startswith(str(self.bin.parent))  # the wheel, not a source tree
        assert parsed.pop("starlette_installed") is False
        assert parsed.pop("starlette_loaded") is False
        return parsed

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "jwt-middleware"), *argv],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
        )


@pytest.fixture(scope="module")
def bare(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BareVenv]:
    home = tmp_path_factory.mktemp("bare")
    venv.EnvBuilder(with_pip=False).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    # Why the outer pip with --python: the venv stays without pip, and the wheel comes with its
    # own dependency list (what `pip install asgi-wsgi-jwt-guard` gives a WSGI user).
    _run([*PIP, "--python", str(python), "install", "-q", str(dist.wheel), "flask", "django"])
    key = make_key("ES256", kid="pkg-1")
    jwks = home / "jwks.json"
    jwks.write_text(json.dumps(public_jwks(key)))
    probe = home / "probe.py"
    probe.write_text(PROBE)
    yield BareVenv(home / "venv" / "bin", probe, jwks, key)


def _token(bare: BareVenv, audience: str = "api") -> str:
    return mint(bare.key, {"sub": "alice"}, issuer=ISSUER, audience=audience)


@pytest.mark.parametrize("face", ["wsgi", "flask", "django"])
def test_wsgi_app_serves_and_refuses_without_starlette(bare: BareVenv, face: str) -> None:
    result = bare.probe_json(face, _token(bare))
    assert result["valid"]["status"] == 200, result
    assert result["valid"]["body"] == "alice"
    assert result["missing"]["status"] == 401
    assert result["missing"]["challenge"].startswith("Bearer")


def test_cli_verify_runs_without_starlette(bare: BareVenv) -> None:
    base = ["verify", "--jwks", str(bare.jwks), "--issuer", ISSUER, "--audience", "api"]
    base += ["--algorithm", "ES256"]
    accepted = bare.cli(*base, _token(bare))
    assert accepted.returncode == 0, accepted.stderr
    [line] = [json.loads(text) for text in accepted.stdout.splitlines()]
    assert line["valid"] is True and line["claims"]["sub"] == "alice"
    refused = bare.cli(*base, _token(bare, audience="other"))
    assert refused.returncode == 1, refused.stderr
    assert json.loads(refused.stdout)["valid"] is False
    assert "Traceback" not in accepted.stderr + refused.stderr


def test_cli_demo_without_starlette_names_the_extra(bare: BareVenv) -> None:
    """The demo is a Starlette app: without the "server" extra it says so (exit 2, no crash)."""
    result = bare.cli("demo", "--port", "0")
    assert result.returncode == 2, result.stderr
    assert f"pip install '{DIST_NAME}[server]'" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_asgi_adapter_without_starlette_names_the_extra(bare: BareVenv) -> None:
    result = bare.probe_json("asgi", _token(bare))
    assert result["name"] == "starlette"
    assert f"pip install '{DIST_NAME}[asgi]'" in result["error"]


def test_installed_version_is_the_metadata_version(bare: BareVenv, dist: Dist) -> None:
    result = bare.probe_json("version")
    assert result["version"] == result["metadata"] == dist.metadata["Version"]


def test_importing_the_package_loads_no_starlette() -> None:
    """In this venv, where starlette is installed: ``import jwt_middleware`` leaves it unloaded,
    and ``JWTMiddleware`` still comes from the package root (PEP 562)."""
    code = (
        "import sys, jwt_middleware; assert 'starlette' not in sys.modules, 'loaded'; "
        "from jwt_middleware import JWTMiddleware; import jwt_middleware.asgi as a; "
        "assert JWTMiddleware is a.JWTMiddleware; assert 'JWTMiddleware' in dir(jwt_middleware); "
        "assert 'JWTMiddleware' in jwt_middleware.__all__"
    )
    _run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
