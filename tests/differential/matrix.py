"""The differential table: one rule set, the handler each rule protects, and every request variant.

STYLE.md §13: the rule matcher and each framework's router must agree on which handler a
request reaches. Each row is sent to every server; :func:`disagreements` is the one judgement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final, Literal

from jwt_middleware import Rule
from tests.support.raw_http import Answer

from .tokens import Credential

__all__ = [
    "APP_HEADER",
    "HANDLERS",
    "MODES",
    "PREFIX",
    "PREFIX_VARIANTS",
    "RULES",
    "VARIANTS",
    "Mode",
    "Run",
    "Variant",
    "disagreements",
]

#: the origin a browser would send; the apps' own CORS layers allow it
ORIGIN: Final = "https://app.differential.test"
#: set on every response the app stack (middleware, framework, handler) starts; a response
#: without it is the server's own answer: the request never reached the app
APP_HEADER: Final = "x-matrix-app"
#: where the prefixed servers are mounted (Starlette Mount, WSGI SCRIPT_NAME, uvicorn --root-path)
PREFIX: Final = "/api"

RULES: Final = (
    Rule("/public", access="public"),
    Rule("/admin/*", scopes=("admin",)),
    Rule("/items/{id}", methods=("DELETE",), scopes=("items:delete",)),
    Rule("/items/{id}", access="optional"),
    Rule("/reports/*", methods=("GET",), scopes=("admin",)),
    Rule("/sub/*", scopes=("sub",)),
    Rule("/ws/*", scopes=("admin",)),
)
PUBLIC, ADMIN, ITEM_DELETE, ITEM, REPORTS, SUB, WS = RULES

#: every handler of the route table, and the rule that is meant to protect it
HANDLERS: Final[dict[str, Rule]] = {
    "public": PUBLIC,
    "admin_panel": ADMIN,
    "admin_user": ADMIN,
    "admin_echo": ADMIN,
    "item_get": ITEM,
    "item_delete": ITEM_DELETE,
    "report_daily": REPORTS,
    "sub_secret": SUB,
    "ws_admin": WS,
}


@dataclass(frozen=True, slots=True)
class Mode:
    """One middleware configuration the servers hold side by side (chosen per request)."""

    normalization: Literal["refuse", "rewrite"]
    preflight: Literal["authenticate", "pass"]

    @property
    def name(self) -> str:
        return self.normalization if self.preflight == "authenticate" else f"{self.normalization}+pass"


MODES: Final = tuple(Mode(n, p) for p in ("authenticate", "pass") for n in ("refuse", "rewrite"))

#: "canonical": the app may see it as sent; "normalisable": refused (400) under "refuse", seen in
#: canonical form under "rewrite"; "ambiguous": 400 in both modes; "other": only the safety check
Shape = Literal["canonical", "normalisable", "ambiguous", "other"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One request: method and target exactly as sent, extra headers, what it must lead to."""

    name: str
    method: str
    target: str
    shape: Shape = "canonical"
    #: the handler a token with every scope reaches (canonical form of the target), if certain
    reaches: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    websocket: bool = False

    @property
    def preflight_sensitive(self) -> bool:
        """Rows whose answer may depend on Config.preflight: run them under every mode."""
        return self.method.upper() == "OPTIONS"


_PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
_ORIGIN_ONLY = {"Origin": ORIGIN}


def _variants() -> tuple[Variant, ...]:
    v = Variant
    return (
        v("public", "GET", "/public", reaches="public"),
        v("panel", "GET", "/admin/panel", reaches="admin_panel"),
        v("panel", "POST", "/admin/panel", reaches="admin_panel"),
        v("panel", "DELETE", "/admin/panel", reaches="admin_panel"),
        v("panel", "HEAD", "/admin/panel"),
        v("lead-dslash", "GET", "//admin/panel", "normalisable", "admin_panel"),
        v("lead-tslash-user", "GET", "///admin/users/7", "normalisable", "admin_user"),
        v("mid-dslash", "GET", "/admin//panel", "normalisable", "admin_panel"),
        v("trailing-slash", "GET", "/admin/panel/"),
        v("dot", "GET", "/./admin/panel", "normalisable", "admin_panel"),
        v("dotdot", "GET", "/public/../admin/panel", "normalisable", "admin_panel"),
        v("enc-dotdot", "GET", "/public/%2e%2e/admin/panel", "normalisable", "admin_panel"),
        v("enc-dot", "GET", "/%2e/admin/panel", "normalisable", "admin_panel"),
        # An escaped unreserved character is decoded by the server before any router sees it
        # (ASGI path, PATH_INFO), and the rule sees that same decoded path: canonical.
        v("enc-unreserved", "GET", "/%61dmin/panel", "canonical", "admin_panel"),
        v("enc-slash", "GET", "/admin%2Fpanel", "ambiguous"),
        v("enc-slash-lower", "GET", "/admin%2fpanel", "ambiguous"),
        v("enc-backslash", "GET", "/admin%5Cpanel", "ambiguous"),
        v("backslash", "GET", "/admin\\panel", "ambiguous"),
        v("enc-nul", "GET", "/admin/panel%00", "ambiguous"),
        v("bad-escape", "GET", "/admin/panel%zz", "ambiguous"),
        v("enc-bad-utf8", "GET", "/admin/panel%ff", "ambiguous"),
        v("upper", "GET", "/ADMIN/panel"),
        v("absolute-form", "GET", "http://127.0.0.1/admin/panel", "other"),
        v("user", "GET", "/admin/users/7", reaches="admin_user"),
        v("item", "GET", "/items/7", reaches="item_get"),
        v("item", "DELETE", "/items/7", reaches="item_delete"),
        v("item", "delete", "/items/7"),
        v("item", "Delete", "/items/7"),
        v("item-dslash", "DELETE", "/items//7", "normalisable", "item_delete"),
        v("report", "GET", "/reports/daily", reaches="report_daily"),
        v("report", "HEAD", "/reports/daily"),
        v("report", "head", "/reports/daily"),
        v("echo", "OPTIONS", "/admin/echo", reaches="admin_echo"),
        v("echo-preflight", "OPTIONS", "/admin/echo", headers=_PREFLIGHT),
        v("echo-preflight", "options", "/admin/echo", headers=_PREFLIGHT),
        v("echo-origin-only", "OPTIONS", "/admin/echo", headers=_ORIGIN_ONLY),
        v("panel", "OPTIONS", "/admin/panel"),
        v("panel-preflight", "OPTIONS", "/admin/panel", headers=_PREFLIGHT),
        v("sub", "GET", "/sub/secret", reaches="sub_secret"),
        v("sub-dslash", "GET", "//sub/secret", "normalisable", "sub_secret"),
        v("sub-inner-dslash", "GET", "/sub//secret", "normalisable", "sub_secret"),
        v("sub-enc", "GET", "/%73ub/secret", "canonical", "sub_secret"),
        v("ws", "GET", "/ws/admin", reaches="ws_admin", websocket=True),
        v("ws-dslash", "GET", "//ws/admin", "normalisable", "ws_admin", websocket=True),
        v("ws-dot", "GET", "/ws/./admin", "normalisable", "ws_admin", websocket=True),
    )


VARIANTS: Final = _variants()

#: only for servers mounted under PREFIX: targets that miss or trick the prefix itself
PREFIX_VARIANTS: Final = (
    Variant("no-prefix", "GET", "/admin/panel", "other"),
    Variant("prefix-dslash", "GET", "//api/admin/panel", "other"),
    Variant("prefix-upper", "GET", "/API/admin/panel", "other"),
    Variant("prefix-enc", "GET", "/%61pi/admin/panel", "other"),
    Variant("prefix-dotdot", "GET", "/api/../admin/panel", "other"),
    Variant("prefix-dotdot-back", "GET", "/api/../api/admin/panel", "other"),
    Variant("prefix-glued", "GET", "/apiadmin/panel", "other"),
)


@dataclass(frozen=True, slots=True)
class Run:
    """What a handler recorded when it ran: its name, the subject it saw, the path it was given."""

    handler: str
    subject: str | None
    path: str


#: what a framework's router may answer, itself, when no handler matched
_ROUTER_ANSWERS: Final = frozenset({301, 302, 307, 308, 404, 405})
_REFUSALS: Final = frozenset({400, 401, 403})


def disagreements(variant: Variant, mode: Mode, credential: Credential, answer: Answer, run: Run | None) -> list[str]:
    """Everything wrong with this answer; empty when the middleware and the router agree.

    Safety: refused before the app (400/401/403 with a challenge and no handler ran; or the
    server itself, or the router, answered and no handler ran), or the handler that ran is one whose protecting rule
    the credential satisfies, and it saw that credential's identity. Never a 5xx. Liveness: the
    contract's refusals and rewrites happen (a silent no-op is a failure, STYLE.md §14).
    """
    crashed = answer.status >= 500 and answer.header_values(APP_HEADER)
    found = [f"the app stack answered {answer.status}"] if crashed else []
    found += _judge_run(variant, credential, answer, run) if run else _judge_no_run(variant, answer)
    found += _judge_contract(variant, mode, credential, answer, run)
    return found


def _judge_run(variant: Variant, credential: Credential, answer: Answer, run: Run) -> list[str]:
    rule = HANDLERS.get(run.handler)
    if rule is None:
        return [f"unknown handler {run.handler!r} ran"]
    found = []
    if rule.access == "required" and credential.token is None:
        found.append(f"{run.handler} ran without a token; its rule {rule.path!r} requires one")
    elif rule.access != "public" and not set(rule.scopes) <= credential.scopes:
        found.append(f"{run.handler} ran for scopes {sorted(credential.scopes)}; its rule wants {list(rule.scopes)}")
    elif rule.access != "public" and run.subject != credential.subject:
        found.append(f"{run.handler} saw subject {run.subject!r}, the token was {credential.subject!r}'s")
    expected_status = 101 if variant.websocket else 200
    if answer.status != expected_status:
        found.append(f"{run.handler} ran but the answer was {answer.status}")
    elif not variant.websocket and variant.method.upper() != "HEAD" and _named(answer) != run.handler:
        found.append(f"{run.handler} ran but the body names {_named(answer)!r}")
    return found


def _judge_no_run(variant: Variant, answer: Answer) -> list[str]:
    status = answer.status
    if not answer.header_values(APP_HEADER):
        # the server's own answer (its parser or its SCRIPT_NAME check refused the request line),
        # or a WebSocket close before accept that the server rendered as 403
        return [] if status == 0 or status >= 400 else [f"the server itself answered {status}"]
    if status in _REFUSALS and answer.header_values("www-authenticate"):
        return []
    if status in _ROUTER_ANSWERS:
        return []
    if variant.method.upper() == "OPTIONS" and 200 <= status < 300:
        return []  # an OPTIONS answered by the app's CORS layer or the framework, no data handler
    if status in _REFUSALS:
        return [f"refused with {status} but without a WWW-Authenticate challenge"]
    return [f"status {status} though no handler ran"]


def _judge_contract(variant: Variant, mode: Mode, credential: Credential, answer: Answer, run: Run | None) -> list[str]:
    """The configured path handling happened: refusals where promised, rewrites that reach the handler."""
    refused = run is None and answer.status == 400
    if variant.shape == "ambiguous" or (variant.shape == "normalisable" and mode.normalization == "refuse"):
        return [] if refused else [f"a {variant.shape} path under {mode.name!r} must be refused with 400"]
    if variant.reaches and credential.name == "full" and (run is None or run.handler != variant.reaches):
        seen = run.handler if run else f"no handler (status {answer.status})"
        return [f"a token with every scope should reach {variant.reaches}, got {seen}"]
    return []


def _named(answer: Answer) -> str | None:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return None
    return body.get("handler") if isinstance(body, dict) else None
