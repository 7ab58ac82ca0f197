"""Django system checks for the middleware's settings (``manage.py check``, ``runserver``, ``migrate``).

Install them by adding this module to ``INSTALLED_APPS``::

    INSTALLED_APPS = [..., "jwt_middleware.integrations.django_checks"]

Why a module rather than an ``AppConfig``: Django imports every installed app's module while it
sets up, before any check runs, and importing this one registers the check (Django's check
registry keeps a set, so importing it twice registers it once). The app has no models, no
migrations and no templates. Importing the module yourself (e.g. from your own ``AppConfig.ready``)
registers the same check.

========================  =========================================================================
``jwt_middleware.E001``   Django's ``AuthenticationMiddleware`` after ours: every token's user would
                          become the session's (anonymous). The middleware also refuses to start.
``jwt_middleware.E002``   ``JWT_MIDDLEWARE_AUTHENTICATOR`` missing, not importable, not an Authenticator
``jwt_middleware.E003``   a :class:`~jwt_middleware.integrations.django_users.UserModelLoader` that
                          cannot resolve users (no ``django.contrib.auth``, a field that is not unique,
                          several issuers and no ``issuer=``)
``jwt_middleware.W001``   this app is installed but ``MIDDLEWARE`` lists no JWTAuthenticationMiddleware
                          (silence it with ``SILENCED_SYSTEM_CHECKS`` when the WSGI/ASGI adapter wraps
                          Django from outside instead)
========================  =========================================================================
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .django_config import (
    MIDDLEWARE,
    authenticator_from_settings,
    middleware_entries,
    middleware_order_problem,
)
from .django_users import check_identity_loader

__all__ = ["check_settings"]


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every mistake above that the current settings hold; Django calls it with its own arguments."""
    if not middleware_entries(MIDDLEWARE):
        return [
            checks.Warning(
                f"MIDDLEWARE lists no {MIDDLEWARE}, so it authenticates no request",
                hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE (below "
                "'django.contrib.auth.middleware.AuthenticationMiddleware' when that is there too).",
                id="jwt_middleware.W001",
            )
        ]
    found: list[checks.CheckMessage] = []
    problem = middleware_order_problem()
    if problem is not None:
        found.append(checks.Error(problem[0], hint=problem[1], id="jwt_middleware.E001"))
    try:
        authenticator = authenticator_from_settings()
    except ImproperlyConfigured as exc:
        return [*found, checks.Error(str(exc), id="jwt_middleware.E002")]
    try:
        check_identity_loader(authenticator.config)
    except ImproperlyConfigured as exc:
        found.append(checks.Error(str(exc), id="jwt_middleware.E003"))
    return found


checks.register(check_settings, checks.Tags.security)
