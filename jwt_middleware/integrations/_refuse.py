"""What the framework helpers share: scope checks, refusals answered as the middleware does, docs rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..authenticator import Authenticator
from ..challenge import Answer, render_challenge
from ..config import _SCOPE_TOKEN, Rule
from ..errors import ConfigError, InsufficientScope, InvalidRequest, MissingToken, Refusal
from ..identity import Identity
from ..request import RequestView

__all__ = [
    "arender",
    "asgi_view",
    "challenge",
    "check_scopes",
    "docs_rule",
    "header_dict",
    "render",
    "scope_tokens",
    "wsgi_view",
]


def scope_tokens(option: str, scopes: Iterable[object]) -> tuple[str, ...]:
    """``scopes`` as a tuple, each one scope token, as ``Rule.scopes`` takes them.

    :param option: the helper's name, for the message (``"require_scopes"``)
    :raises ConfigError: a value that is not one scope-token (RFC 6749 §3.3), e.g. ``"read write"``
        (which no token could ever hold, so the check would refuse every caller)
    """
    found: list[str] = []
    for scope in (scopes,) if isinstance(scopes, str) else scopes:
        if callable(scope):
            raise ConfigError(f"{option}: give it the scopes first, e.g. @{option}('admin'), not @{option}")
        if not isinstance(scope, str) or _SCOPE_TOKEN.fullmatch(scope) is None:
            raise ConfigError(
                f"{option}: {scope!r} is not one scope token (RFC 6749 §3.3); pass each scope "
                f"as its own argument, e.g. {option}('read', 'write')"
            )
        found.append(scope)
    return tuple(found)


def check_scopes(identity: Identity | None, scopes: tuple[str, ...] | list[str]) -> Identity:
    """The identity, when it holds every one of ``scopes``.

    :raises MissingToken: no identity (the middleware let an optional route through)
    :raises InsufficientScope: a scope is missing (RFC 6750 §3.1)
    """
    if identity is None:
        raise MissingToken("missing_token")
    if not identity.scopes.issuperset(scopes):
        raise InsufficientScope("insufficient_scope", params={"scope": " ".join(scopes)})
    return identity


def render(
    refusal: Refusal,
    realm: str = "api",
    authenticator: Authenticator | None = None,
    request: RequestView | None = None,
) -> Answer:
    """The middleware's own answer when its Authenticator is known (realm, DPoP challenge,
    stripped body and the ``on_refusal`` body all follow its Config); else a Bearer challenge
    in ``realm`` with the default body."""
    if authenticator is not None:
        return authenticator.render(refusal, request)
    return render_challenge(refusal, realm=realm)


async def arender(
    refusal: Refusal,
    realm: str = "api",
    authenticator: Authenticator | None = None,
    request: RequestView | None = None,
) -> Answer:
    """The async twin of :func:`render` (an async ``on_refusal`` is awaited)."""
    if authenticator is not None:
        return await authenticator.arender(refusal, request)
    return render_challenge(refusal, realm=realm)


def challenge(refusal: Refusal, realm: str = "api", authenticator: Authenticator | None = None) -> Answer:
    """:func:`render` without ``on_refusal``: the status and headers every body comes with."""
    if authenticator is not None:
        return authenticator.challenge(refusal)
    return render_challenge(refusal, realm=realm)


def asgi_view(scope: Mapping[str, Any]) -> RequestView | None:
    """The refused request for ``on_refusal``, from an ASGI scope (None: a path with no single
    meaning, which the middleware refused before any helper could run)."""
    try:
        return RequestView.from_asgi(scope)  # type: ignore[arg-type]
    except InvalidRequest:
        return None


def wsgi_view(environ: Mapping[str, Any]) -> RequestView | None:
    """The refused request for ``on_refusal``, from a WSGI environ (None as for :func:`asgi_view`)."""
    from ..wsgi import request_from_environ

    try:
        return request_from_environ(environ)  # type: ignore[arg-type]
    except InvalidRequest:
        return None


def header_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Headers for frameworks that take a dict: repeated challenges joined (RFC 9110 §11.6.1);
    the body's content-type/length left to the framework."""
    merged: dict[str, str] = {}
    for name, value in headers:
        if name in ("content-type", "content-length"):
            continue
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def docs_rule(path: str, methods: tuple[str, ...]) -> Rule:
    """A public rule for one of the framework's own documentation routes, exactly that path.

    :raises ConfigError: a route path holding ``*``, which a Rule would read as a prefix
    """
    if "*" in path:
        raise ConfigError(f"docs_rules: {path!r} holds '*', which a Rule reads as a prefix; rename the route")
    return Rule(path, access="public", methods=methods)
