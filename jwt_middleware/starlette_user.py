"""Starlette-compatible ``scope["user"]`` and ``scope["auth"]`` for a verified Identity.

The one module of the ASGI side that needs starlette (the ``asgi`` extra): its classes subclass
Starlette's own, so ``starlette.authentication.requires`` and ``has_required_scope`` read them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final, NoReturn

from .config import Config
from .identity import Identity, qualified_ids

#: what an ASGI user without starlette is told, instead of a bare "No module named 'starlette'"
NEEDS_STARLETTE: Final = (
    "JWTMiddleware (the ASGI adapter) sets Starlette's own request.user and request.auth types "
    "and needs starlette: pip install 'asgi-wsgi-jwt-guard[asgi]' (WSGIJWTMiddleware, Flask and "
    "Django under WSGI, and the jwt-middleware CLI's verify need no starlette)"
)

try:
    from starlette.authentication import AuthCredentials, BaseUser, UnauthenticatedUser
except ModuleNotFoundError as missing:
    if missing.name != "starlette":  # starlette is there, something it imports is not
        raise
    raise ModuleNotFoundError(NEEDS_STARLETTE, name="starlette") from missing

__all__ = ["NEEDS_STARLETTE", "JWTCredentials", "JWTUser", "anonymous", "starlette_pair"]

# Why read-only: the middleware keeps one (user, credentials) pair per cached Identity, so every
# request with the same token is handed the same two objects; a handler that appended a scope
# or swapped the principal would change what the next request's @requires sees.
_SET: Final = object.__setattr__
_SHARED: Final = "is read-only: one object serves every request with this token"


def _refuse(self: object, *args: object) -> NoReturn:
    raise AttributeError(f"{type(self).__name__} {_SHARED}")


class JWTUser(BaseUser):
    """``request.user`` for a verified token; read-only.

    ``identity`` is the framework's user id (:meth:`Identity.user_id`): the bare ``sub`` with one
    trusted issuer, the issuer-qualified :attr:`Identity.qualified_subject` with several.
    ``display_name`` is the subject; ``principal`` the whole :class:`~jwt_middleware.Identity`.

    :param principal: the verified Identity
    :param qualified: use the issuer-qualified id (:func:`~jwt_middleware.identity.qualified_ids`)
    """

    __slots__ = ("_identity", "principal")
    principal: Identity
    _identity: str

    def __init__(self, principal: Identity, qualified: bool = False) -> None:
        _SET(self, "principal", principal)
        _SET(self, "_identity", principal.user_id(qualified))

    __setattr__ = __delattr__ = _refuse

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject or ""

    @property
    def identity(self) -> str:
        return self._identity

    def __repr__(self) -> str:
        return f"JWTUser(subject={self.principal.subject!r}, issuer={self.principal.issuer!r})"


class JWTCredentials(AuthCredentials):
    """``request.auth`` for a verified token: ``scopes`` is a sorted tuple, and nothing can be
    reassigned (Starlette's ``has_required_scope`` and ``requires`` read it unchanged)."""

    __slots__ = ("scopes",)  # (a slot: it stands before the instance dict AuthCredentials has)

    def __init__(self, scopes: Iterable[str]) -> None:
        _SET(self, "scopes", tuple(sorted(scopes)))

    __setattr__ = __delattr__ = _refuse


def starlette_pair(identity: Identity, config: Config | None = None) -> tuple[JWTUser, JWTCredentials]:
    """The user and credentials of ``identity``; ``config`` says whether ids name their issuer."""
    # Why slot setters on bare instances (the two __init__ do the same): this runs once per
    # verified token, and the Python __init__ frames were a third of its cost.
    qualified = config is not None and qualified_ids(config)
    user: JWTUser = _NEW(JWTUser)
    _SET_PRINCIPAL(user, identity)
    _SET_IDENTITY(user, (identity.qualified_subject if qualified else identity.subject) or "")
    credentials: JWTCredentials = _NEW(JWTCredentials)
    _SET_SCOPES(credentials, tuple(sorted(identity.scopes)))
    return user, credentials


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    setter: Callable[[object, object], None] = cls.__dict__[name].__set__
    return setter


_NEW: Final = object.__new__
_SET_PRINCIPAL: Final = _slot_setter(JWTUser, "principal")
_SET_IDENTITY: Final = _slot_setter(JWTUser, "_identity")
_SET_SCOPES: Final = _slot_setter(JWTCredentials, "scopes")


def anonymous() -> tuple[UnauthenticatedUser, AuthCredentials]:
    """Fresh per request (nothing shared): Starlette's own anonymous pair."""
    return UnauthenticatedUser(), AuthCredentials()
