"""Starlette-compatible ``scope["user"]`` and ``scope["auth"]`` for a verified Identity."""

from __future__ import annotations

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser

from .identity import Identity

__all__ = ["JWTUser", "anonymous", "starlette_pair"]


class JWTUser(BaseUser):
    """``request.user`` for a verified token.

    Starlette's conventions hold: ``identity`` and ``display_name`` are the subject (strings);
    ``principal`` is the whole :class:`~jwt_middleware.Identity`.
    """

    __slots__ = ("principal",)

    def __init__(self, principal: Identity) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject or ""

    @property
    def identity(self) -> str:
        return self.principal.subject or ""

    def __repr__(self) -> str:
        return f"JWTUser(subject={self.principal.subject!r}, issuer={self.principal.issuer!r})"


def starlette_pair(identity: Identity) -> tuple[JWTUser, AuthCredentials]:
    return JWTUser(identity), AuthCredentials(list(identity.scopes))


def anonymous() -> tuple[UnauthenticatedUser, AuthCredentials]:
    return UnauthenticatedUser(), AuthCredentials()
