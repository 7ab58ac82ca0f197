"""Read the Django integration's settings, and find the mistakes in them that fail silently.

The middleware runs these at construction (Django builds the chain when it loads its handler)
and the system check (:mod:`~jwt_middleware.integrations.django_checks`) at ``manage.py check``.
"""

from __future__ import annotations

import inspect
from typing import Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..authenticator import Authenticator

__all__ = [
    "AUTHENTICATION_MIDDLEWARE",
    "MIDDLEWARE",
    "SETTING",
    "authenticator_from_settings",
    "check_middleware_order",
    "middleware_entries",
    "middleware_order_problem",
]

SETTING: Final = "JWT_MIDDLEWARE_AUTHENTICATOR"
#: ours and Django's, by the names their classes (or a subclass's bases) are defined under
MIDDLEWARE: Final = "jwt_middleware.integrations.django.JWTAuthenticationMiddleware"
AUTHENTICATION_MIDDLEWARE: Final = "django.contrib.auth.middleware.AuthenticationMiddleware"
_EXPECTED: Final = (
    f"set {SETTING} to an Authenticator or its dotted path, e.g. 'myproject.auth.AUTHENTICATOR' "
    "(a module-level Authenticator(Config(...)))"
)


def authenticator_from_settings() -> Authenticator:
    """``settings.JWT_MIDDLEWARE_AUTHENTICATOR``: an Authenticator, or the dotted path of one.

    :raises ImproperlyConfigured: the setting is missing, its path does not import, or it
        names something that is not an Authenticator (each message names the setting and
        the expected type)
    """
    value = getattr(settings, SETTING, None)
    if value is None:
        raise ImproperlyConfigured(f"{SETTING} is not set: {_EXPECTED}")
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(f"{SETTING}: {exc}; {_EXPECTED}") from None
    if not isinstance(value, Authenticator):
        found = type(value).__name__
        raise ImproperlyConfigured(f"{SETTING}: got {found}, not an Authenticator; {_EXPECTED}")
    return value


def middleware_entries(name: str) -> list[tuple[int, str]]:
    """(position, entry) of each ``settings.MIDDLEWARE`` entry that is the class ``name`` or a
    subclass of it.

    Why by name rather than ``issubclass``: importing Django's auth middleware raises while
    ``django.contrib.auth`` is not installed, and the checks must run exactly then too. An
    entry that does not import is skipped: Django reports it when it loads the handler.
    """
    found = []
    for position, entry in enumerate(getattr(settings, "MIDDLEWARE", None) or ()):
        try:
            candidate = import_string(entry)
        except Exception:  # noqa: S112 - any failure to import is Django's to report
            continue
        if inspect.isclass(candidate) and name in _class_names(candidate):
            found.append((position, entry))
    return found


def _class_names(cls: type) -> set[str]:
    """The dotted names of ``cls`` and of every class it derives from."""
    return {f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__}


def middleware_order_problem() -> tuple[str, str] | None:
    """(message, fix) when Django's ``AuthenticationMiddleware`` runs after ours.

    Why it matters: MIDDLEWARE runs top to bottom, and Django's middleware sets ``request.user``
    to the session's user, lazily, whatever was there: every token-authenticated request would
    reach the view as ``AnonymousUser`` (an API client has no session), and ``login_required``
    or ``has_perm`` would refuse it without a word about why.
    """
    ours, theirs = middleware_entries(MIDDLEWARE), middleware_entries(AUTHENTICATION_MIDDLEWARE)
    if not ours or not theirs:
        return None
    (first, mine), (last, django) = min(ours), max(theirs)
    if last < first:
        return None
    return (
        f"MIDDLEWARE: {django!r} comes after {mine!r} and replaces the user each token "
        "authenticated with the session's user (AnonymousUser for an API client)",
        f"Move {mine!r} below {django!r} in MIDDLEWARE.",
    )


def check_middleware_order() -> None:
    """The middleware's start-up check (the system check reports the same as ``E001``).

    :raises ImproperlyConfigured: naming both entries and the fix
    """
    problem = middleware_order_problem()
    if problem is not None:
        raise ImproperlyConfigured(" ".join(problem))
