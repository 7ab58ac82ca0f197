"""Render a refusal the way the middleware does, for helpers that refuse inside a framework."""

from __future__ import annotations

from ..authenticator import Authenticator
from ..challenge import Answer, render_challenge
from ..errors import InsufficientScope, MissingToken, Refusal
from ..identity import Identity

__all__ = ["check_scopes", "header_dict", "render"]


def check_scopes(identity: Identity | None, scopes: tuple[str, ...]) -> Identity:
    """The identity, when it holds every one of ``scopes``.

    :raises MissingToken: no identity (the middleware let an optional route through)
    :raises InsufficientScope: a scope is missing (RFC 6750 §3.1)
    """
    if identity is None:
        raise MissingToken("missing_token")
    if not identity.scopes.issuperset(scopes):
        raise InsufficientScope("insufficient_scope", params={"scope": " ".join(scopes)})
    return identity


def render(refusal: Refusal, realm: str = "api", authenticator: Authenticator | None = None) -> Answer:
    """The middleware's own answer when its Authenticator is known (realm, DPoP challenge,
    stripped body all follow its Config); else a Bearer challenge in ``realm``."""
    if authenticator is not None:
        return authenticator.render(refusal)
    return render_challenge(refusal, realm=realm)


def header_dict(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Headers for frameworks that take a dict: repeated challenges joined (RFC 9110 §11.6.1);
    the body's content-type/length left to the framework."""
    merged: dict[str, str] = {}
    for name, value in headers:
        if name in ("content-type", "content-length"):
            continue
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged
