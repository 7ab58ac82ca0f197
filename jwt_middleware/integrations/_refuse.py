"""Render a refusal the way the middleware does, for helpers that refuse inside a framework."""

from __future__ import annotations

from ..challenge import Answer, render_challenge
from ..errors import InsufficientScope, MissingToken, Refusal
from ..identity import Identity

__all__ = ["check_scopes", "render"]


def check_scopes(identity: Identity | None, scopes: tuple[str, ...]) -> None:
    """:raises MissingToken: no identity (the middleware let an optional route through)
    :raises InsufficientScope: a scope is missing (RFC 6750 §3.1)"""
    if identity is None:
        raise MissingToken("missing_token")
    if not identity.scopes.issuperset(scopes):
        raise InsufficientScope("insufficient_scope", params={"scope": " ".join(scopes)})


def render(refusal: Refusal, realm: str = "api") -> Answer:
    return render_challenge(refusal, realm=realm)
