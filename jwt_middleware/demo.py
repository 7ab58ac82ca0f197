"""The demo: a small Starlette app behind JWTMiddleware, with keys generated in memory.

``create_demo_app()`` builds it (tests use it without a server); ``run_demo()`` serves it with
uvicorn (the ``server`` extra), prints tokens and ready-to-run commands, and shows the
library's log lines (``jwt_middleware.audit``: one per decision) on stderr beside uvicorn's.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
import sysconfig
from typing import Any, Final

from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .asgi import IDENTITY_KEY, JWTMiddleware
from .authenticator import Authenticator
from .config import Config, Issuer, Rule
from .identity import Identity
from .keys.sources import StaticKeys, is_loopback_host
from .testing import make_key, mint, public_jwks

__all__ = [
    "DEMO_AUDIENCE",
    "DEMO_TOKEN_LIFETIME",
    "cli_command",
    "create_demo_app",
    "mint_demo_token",
    "run_demo",
]

DEMO_AUDIENCE: Final = "demo-api"
DEMO_TOKEN_LIFETIME: Final = 3600  # seconds
DEFAULT_ISSUER: Final = "http://127.0.0.1:8000"
JWKS_PATH: Final = "/.well-known/jwks.json"
CLI_SCRIPT: Final = "jwt-middleware"
SERVER_MISSING: Final = (
    "the demo needs uvicorn: pip install 'asgi-wsgi-jwt-guard[server]' "
    "(from a checkout: pip install '.[server]')"
)

_USAGE: Final = """\
jwt_middleware demo: this API is protected by JWTMiddleware.

  GET /                        public: this text
  GET {jwks_path}   public: the issuer's signing keys (JWKS)
  GET /me                      needs a token: who you are
  GET /admin                   needs a token with scope "admin"

Send the token as: Authorization: Bearer <token>
Tokens are printed in the console that started the demo (jwt-middleware demo).
Tokens must carry iss={issuer} and aud={audience}, signed ES256 by this app's key.
"""


def create_demo_app(
    issuer: str = DEFAULT_ISSUER, audience: str = DEMO_AUDIENCE
) -> tuple[Starlette, Key, str]:
    """The demo app, its private ES256 signing key and its issuer name.

    Mint tokens the app accepts with :func:`mint_demo_token` (or ``testing.mint``).
    """
    key = make_key("ES256")
    jwks = public_jwks(key)
    config = Config(
        issuers=(Issuer(issuer, algorithms=("ES256",), keys=StaticKeys(jwks), typ=("at+jwt",)),),
        audience=audience,
        rules=(
            Rule("/", access="public"),
            Rule(JWKS_PATH, access="public"),
            Rule("/admin", scopes=("admin",)),
        ),
    )
    usage = _USAGE.format(jwks_path=JWKS_PATH, issuer=issuer, audience=audience)

    async def home(request: Request) -> Response:
        return PlainTextResponse(usage)

    async def keys(request: Request) -> Response:
        return JSONResponse(jwks, headers={"cache-control": "max-age=300"})

    async def me(request: Request) -> Response:
        return JSONResponse(_describe(request.scope[IDENTITY_KEY]))

    async def admin(request: Request) -> Response:
        identity: Identity = request.scope[IDENTITY_KEY]
        return JSONResponse({"message": "welcome to the admin area", "subject": identity.subject})

    routes = [
        Route("/", home),
        Route(JWKS_PATH, keys),
        Route("/me", me),
        Route("/admin", admin),
    ]
    middleware = [Middleware(JWTMiddleware, authenticator=Authenticator(config))]
    app = Starlette(routes=routes, middleware=middleware)
    return app, key, issuer


def _describe(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "scopes": sorted(identity.scopes),
        "issuer": identity.issuer,
        "expires_at": identity.expires_at,
    }


def mint_demo_token(key: Key, issuer: str, scope: str, subject: str = "demo-user") -> str:
    """A token the demo app accepts, valid for :data:`DEMO_TOKEN_LIFETIME` seconds."""
    return mint(
        key,
        {"sub": subject, "scope": scope, "client_id": "demo-cli"},
        issuer=issuer,
        audience=DEMO_AUDIENCE,
        lifetime=DEMO_TOKEN_LIFETIME,
    )


# --- serving -------------------------------------------------------------------------------
def run_demo(host: str | None = None, port: int = 8000) -> int:
    """Serve the demo until interrupted; return the exit code.

    Binds 127.0.0.1 unless ``host`` names another address; a non-loopback address is
    served only when given explicitly, and then with a warning.
    """
    try:
        import uvicorn
    except ImportError:
        _note(SERVER_MISSING)
        return 2
    bind_host = host or "127.0.0.1"
    if not is_loopback_host(bind_host):
        _note(
            f"warning: {bind_host} is not a loopback address; the demo and its tokens are reachable "
            "from the network"
        )
    try:
        sock = _bind(bind_host, port)
    except OSError as exc:
        _note(f"cannot listen on {bind_host}:{port}: {exc.strerror or type(exc).__name__}")
        return 1
    actual_port = sock.getsockname()[1]
    base = f"http://{_url_host(bind_host)}:{actual_port}"
    app, key, issuer = create_demo_app(issuer=base)

    class Server(uvicorn.Server):
        # Why: print once serving (and once Ctrl+C is handled), so the commands work as printed.
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                _print_banner(base, actual_port, key, issuer)

    config = uvicorn.Config(app, log_level="info", access_log=True)
    _show_library_logs()
    with sock:
        Server(config).run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting, so the printed port is the real one (``--port 0`` included)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 - printing a URL, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _show_library_logs() -> None:
    """Send ``jwt_middleware``'s INFO lines (the audit events) to stderr, formatted as uvicorn's.

    Why here and not at import: a library must leave logging to the application; the demo
    *is* the application, and watching its decisions is the point of running it.
    """
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    library = logging.getLogger("jwt_middleware")
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False  # one line per event, whatever the root logger has


def cli_command(scripts_dir: str | None = None) -> str:
    """The ``jwt-middleware`` command as a shell can run it with no virtualenv activated.

    The absolute path of this environment's script when it is installed there (``scripts_dir``,
    default: this interpreter's scripts directory), else this interpreter running the CLI
    module. Why not the bare name: it is on ``PATH`` only while the venv is activated.
    """
    directory = scripts_dir if scripts_dir is not None else sysconfig.get_path("scripts")
    for name in (CLI_SCRIPT, CLI_SCRIPT + ".exe"):
        script = os.path.join(directory, name)
        if os.path.isfile(script) and os.access(script, os.X_OK):
            return shlex.quote(os.path.abspath(script))
    if not sys.executable:  # an embedded interpreter: the bare name is the best left
        return CLI_SCRIPT
    return shlex.join([os.path.abspath(sys.executable), "-m", "jwt_middleware.cli"])


def _print_banner(base: str, port: int, key: Key, issuer: str) -> None:
    read = mint_demo_token(key, issuer, "read")
    admin = mint_demo_token(key, issuer, "read admin")
    lines = [
        "jwt-middleware demo: a Starlette app behind JWTMiddleware (keys generated in memory)",
        f"  url       {base}",
        f"  port      {port}",
        f"  issuer    {issuer}",
        f"  audience  {DEMO_AUDIENCE}",
        f"  tokens    ES256, at+jwt, valid for {DEMO_TOKEN_LIFETIME // 60} minutes",
        "",
        'READ_TOKEN (scope "read"):',
        f"  {read}",
        'ADMIN_TOKEN (scope "read admin"):',
        f"  {admin}",
        "",
        "Try:",
        f"  curl {base}/",
        f"  curl -H {_bearer(read)} {base}/me",
        f"  curl -i -H {_bearer(read)} {base}/admin      # 403 insufficient_scope",
        f"  curl -H {_bearer(admin)} {base}/admin",
        f"  curl -i {base}/me                             # 401, no token",
        f"  {cli_command()} verify --jwks {base}{JWKS_PATH} --issuer {shlex.quote(issuer)} "
        f"--audience {DEMO_AUDIENCE} --algorithm ES256 --typ at+jwt {read}",
        "",
        "Each request's decision is logged on stderr (jwt_middleware.audit).",
        "Press Ctrl+C to stop.",
    ]
    print("\n".join(lines), flush=True)


def _bearer(token: str) -> str:
    return shlex.quote(f"Authorization: Bearer {token}")


def _note(message: str) -> None:
    print(f"jwt-middleware demo: {message}", file=sys.stderr, flush=True)
