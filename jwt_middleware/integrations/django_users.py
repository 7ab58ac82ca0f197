"""The users a Django request gets: the token's own, an anonymous one, or a row of the user model.

Nothing here imports ``django.contrib.auth`` at module level, so an API without users (no
``django.contrib.auth``, no ``contenttypes`` in ``INSTALLED_APPS``) runs the middleware too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from ..config import Config
from ..errors import ConfigError
from ..identity import Identity

__all__ = [
    "AsyncUserModelLoader",
    "JWTAnonymousUser",
    "JWTUser",
    "UserModelLoader",
    "anonymous_user_class",
    "check_identity_loader",
]

_AUTH_APP: Final = "django.contrib.auth"


class JWTUser:
    """``request.user`` for a verified token (duck-types Django's user for auth checks).

    ``identity`` (and ``username``, ``pk``) is the user id (:meth:`Identity.user_id`): the bare
    subject with one trusted issuer, the issuer-qualified one with several; ``principal`` the
    whole Identity. A new JWTUser per request; the Identity it holds is shared and read-only.

    :param principal: the verified Identity
    :param qualified: use the issuer-qualified id (:func:`~jwt_middleware.identity.qualified_ids`)
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, principal: Identity, qualified: bool = False) -> None:
        self.principal = principal
        self.identity = self.username = principal.user_id(qualified)
        self.pk = self.id = self.identity or None

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """A Django permission name is granted when the token carries it as a scope.

        Never for one object (``obj``): a scope grants an action on every object, so it says
        nothing about this one; like Django's ModelBackend, False. Check ownership in the view.
        """
        return obj is None and perm in self.principal.scopes

    def has_perms(self, perms: Iterable[str], obj: Any = None) -> bool:
        """Every permission of ``perms`` (:meth:`has_perm`).

        :raises ValueError: ``perms`` is one string, as Django's own ``User.has_perms`` does
            (it would otherwise be read letter by letter)
        """
        if isinstance(perms, str):
            raise ValueError("has_perms: perms must be an iterable of permission names, e.g. ['app.view']")
        return obj is None and self.principal.scopes.issuperset(perms)

    def has_module_perms(self, app_label: str) -> bool:
        return any(scope.startswith(app_label + ".") for scope in self.principal.scopes)

    def __str__(self) -> str:
        return self.username


class JWTAnonymousUser:
    """``request.user`` without a token when ``django.contrib.auth`` is not installed: the
    attributes of Django's ``AnonymousUser`` that need no auth tables (no groups, no
    permission backends), so ``is_authenticated``, ``has_perm`` and ``str()`` answer as it does."""

    id = pk = None
    username = ""
    is_authenticated = False
    is_anonymous = True
    is_active = is_staff = is_superuser = False

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def has_perms(self, perms: Iterable[str], obj: Any = None) -> bool:
        """As Django's ``AnonymousUser.has_perms``: True only for no permissions at all.

        :raises ValueError: ``perms`` is one string
        """
        if isinstance(perms, str):
            raise ValueError("has_perms: perms must be an iterable of permission names, e.g. ['app.view']")
        return not any(True for _ in perms)

    def has_module_perms(self, app_label: str) -> bool:
        return False

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        return set()

    def __str__(self) -> str:
        return "AnonymousUser"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JWTAnonymousUser)

    def __hash__(self) -> int:
        return 1


def anonymous_user_class() -> Callable[[], object]:
    """Django's ``AnonymousUser`` when ``django.contrib.auth`` is installed, else ours.

    Why Django's when it can: code written for Django tests ``isinstance(user, AnonymousUser)``
    and its ``has_perm`` asks the configured backends, as every Django app expects. Why not
    always: importing ``django.contrib.auth.models`` without the app installed raises.
    """
    from django.apps import apps

    if apps.is_installed(_AUTH_APP):
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser  # type: ignore[no-any-return]
    return JWTAnonymousUser


class _UserLookup:
    """What both loaders share: which row a verified token names, checked before any query."""

    def __init__(self, claim: str = "sub", field: str | None = None, *, issuer: str | None = None) -> None:
        name = type(self).__name__
        if not isinstance(claim, str) or not claim:
            raise ConfigError(f"{name}: claim must name a claim, e.g. claim='sub'")
        if field is not None and (not isinstance(field, str) or not field):
            raise ConfigError(f"{name}: field must name a unique field of the user model, e.g. 'username'")
        if issuer is not None and (not isinstance(issuer, str) or not issuer):
            raise ConfigError(f"{name}: issuer must be one of Config.issuers' issuer strings")
        self.claim, self.field, self.issuer = claim, field, issuer
        self._resolved: tuple[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(claim={self.claim!r}, field={self.field!r}, issuer={self.issuer!r})"

    def check(self, config: Config | None = None) -> None:
        """Refuse what would resolve the wrong user or none at all; the middleware calls it at
        construction and the system check (``jwt_middleware.E003``) at ``manage.py check``.

        :raises django.core.exceptions.ImproperlyConfigured: ``django.contrib.auth`` is not
            installed; ``field`` is not a unique field of the user model; several issuers are
            trusted and ``issuer`` is not set (a claim is unique only within its issuer, RFC 7519
            §4.1.2, so issuer A could name a user of issuer B); ``issuer`` is not trusted
        """
        from django.core.exceptions import ImproperlyConfigured

        if config is not None:
            issuers = [i.issuer for i in config.issuers]
            if self.issuer is None and len(issuers) > 1:
                raise ImproperlyConfigured(
                    f"{self!r}: {len(issuers)} issuers are trusted and a {self.claim!r} is unique only "
                    "within its issuer, so one issuer could name another's user; pass issuer='...' "
                    "(only that issuer's tokens load a user) or write an identity_loader keyed by "
                    "identity.qualified_subject"
                )
            if self.issuer is not None and self.issuer not in issuers:
                raise ImproperlyConfigured(
                    f"{self!r}: issuer {self.issuer!r} is not among Config.issuers, so no token would "
                    "ever load a user; use one of " + ", ".join(repr(i) for i in issuers)
                )
        self._target()

    def _target(self) -> tuple[Any, Any]:
        """The user model and its field to match, checked once (needs the app registry ready)."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> tuple[Any, Any]:
        from django.apps import apps
        from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured

        if not apps.is_installed(_AUTH_APP):
            raise ImproperlyConfigured(
                f"{self!r} loads Django's user model: add 'django.contrib.auth' and "
                "'django.contrib.contenttypes' to INSTALLED_APPS, or drop Config.identity_loader"
            )
        from django.contrib.auth import get_user_model

        model = get_user_model()
        if self.field is None or self.field == "pk":
            return model, model._meta.pk
        try:
            field = model._meta.get_field(self.field)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{self!r}: {model.__name__} has no field {self.field!r}; name a unique field, e.g. "
                f"{model.USERNAME_FIELD!r}"
            ) from None
        if not getattr(field, "unique", False):
            raise ImproperlyConfigured(
                f"{self!r}: {model.__name__}.{self.field} is not unique, so one token could match "
                "several users; name a field with unique=True (or the primary key: field=None)"
            )
        return model, field

    def _query(self, identity: Identity) -> tuple[Any, dict[str, Any]] | None:
        """The model and the lookup for this token; None when it names no user: another issuer,
        no such claim, or a value the field cannot hold (``"abc"`` for an integer key).

        Why convert before the query: a value the field refuses names nobody (401), while an
        exception from the query itself is a failure (503), not a verdict on the token.
        """
        if self.issuer is not None and identity.issuer != self.issuer:
            return None
        value = identity.claims.get(self.claim)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            return None
        from django.core.exceptions import ValidationError

        model, field = self._target()
        try:
            return model, {field.attname: field.to_python(value)}
        except ValidationError:
            return None


def _may_sign_in(user: Any) -> Any:
    """The user, or None when inactive: Django's ``ModelBackend.user_can_authenticate`` rule
    (a model without ``is_active`` lets every user in)."""
    return user if getattr(user, "is_active", True) else None


def check_identity_loader(config: Config) -> None:
    """:meth:`UserModelLoader.check` for the loader ``config`` names, when it is one of ours
    (another loader is the app's own, and this module cannot know what it needs).

    :raises django.core.exceptions.ImproperlyConfigured: as :meth:`UserModelLoader.check`
    """
    loader = config.identity_loader
    if isinstance(loader, _UserLookup):
        loader.check(config)


class UserModelLoader(_UserLookup):
    """``Config(identity_loader=UserModelLoader())``: ``request.user`` is the active row of
    ``get_user_model()`` whose ``field`` equals the token's ``claim`` (simplejwt's
    ``USER_ID_FIELD`` / ``USER_ID_CLAIM``); no such row, or an inactive one, is a 401
    ``invalid_token`` (reason ``unknown_user``).

    Why the primary key by default: it is the one field Django guarantees unique and never
    gives to another account; a username can be renamed and then taken by someone else, and a
    token naming the old name would open the new owner's account (simplejwt's
    ``USER_ID_FIELD`` defaults to ``id`` for the same reason). For an external identity
    provider, keep its ``sub`` in a unique field of the model and name that field.

    Sync: for WSGI, and for Django's ASGI path, where the middleware runs it in Django's
    thread for sync code (``sync_to_async``) as Django runs sync views. Use
    :class:`AsyncUserModelLoader` where a caller awaits it inline (the pure ASGI middleware).

    :param claim: the claim naming the user (``"sub"``)
    :param field: a unique field of the user model; None: the primary key
    :param issuer: with several trusted issuers, the one whose tokens name users of this model
    """

    def __call__(self, identity: Identity) -> Any:
        found = self._query(identity)
        if found is None:
            return None
        model, lookup = found
        try:
            user = model._default_manager.get(**lookup)
        except model.DoesNotExist:
            return None
        return _may_sign_in(user)


class AsyncUserModelLoader(_UserLookup):
    """The async twin of :class:`UserModelLoader` (Django's ``QuerySet.aget``): for callers
    that await the loader in the event loop, where a sync ORM call raises
    ``SynchronousOnlyOperation``."""

    async def __call__(self, identity: Identity) -> Any:
        found = self._query(identity)
        if found is None:
            return None
        model, lookup = found
        try:
            user = await model._default_manager.aget(**lookup)
        except model.DoesNotExist:
            return None
        return _may_sign_in(user)
