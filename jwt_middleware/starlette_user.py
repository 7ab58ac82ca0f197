"""Starlette-compatible ``scope["user"]`` and ``scope["auth"]`` for a verified Identity."""

from __future__ import annotations

from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser

from .identity import Identity

__all__ = ["JWTUser", "anonymous", "starlette_pair"]


class JWTUser(BaseUser):
    """``request.user`` for a verified token; ``identity`` holds everything else."""

    __slots__ = ("identity",)

    def __init__(self, identity: Identity) -> None:
        self.identity = identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.identity.subject or ""

    @property
    def identity_subject(self) -> str | None:
        return self.identity.subject

    def __repr__(self) -> str:
        return f"JWTUser(subject={self.identity.subject!r}, issuer={self.identity.issuer!r})"


def starlette_pair(identity: Identity) -> tuple[JWTUser, AuthCredentials]:
    return JWTUser(identity), AuthCredentials(identity.scopes)  # type: ignore[arg-type]


def anonymous() -> tuple[UnauthenticatedUser, AuthCredentials]:
    return UnauthenticatedUser(), AuthCredentials()
