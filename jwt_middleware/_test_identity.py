"""A fixed identity for tests: an Authenticator that decides every request as one Identity.

Re-exported by :mod:`jwt_middleware.testing`; read its docstrings there. Nothing here checks
a token, so everything here refuses to be built outside a test run (:func:`under_test`).
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from joserfc.jwk import ECKey

from .asgi import JWTMiddleware
from .authenticator import Authenticator, Resume
from .config import Config, Issuer
from .errors import ConfigError, InsufficientScope, MissingToken, Refusal
from .identity import Identity, identity_from_claims
from .keys.sources import StaticKeys
from .request import RequestView
from .wsgi import WSGIJWTMiddleware

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = [
    "FixedAuthenticator",
    "as_identity",
    "identity_overrides",
    "make_identity",
    "override_identity",
    "under_test",
]

logger = logging.getLogger("jwt_middleware.testing")

#: set to "1" to allow the fixed identity under a test runner this module does not recognise
OPT_IN: Final = "JWT_MIDDLEWARE_TESTING"
TEST_ISSUER: Final = "https://issuer.test"
_NOT_UNDER_TEST: Final = (
    "{what}: decides every request as a fixed identity without any token, so it runs only "
    "under a test run (pytest, python -m unittest, Django's test runner) or with "
    f"{OPT_IN}=1 set for another runner; never use it to serve requests"
)


def under_test() -> bool:
    """True under pytest, ``python -m unittest``, Django's test environment or ``JWT_MIDDLEWARE_TESTING=1``.

    Why these signs: each is set by the runner itself (the ``pytest`` module is loaded, unittest
    is ``__main__``, Django's ``setup_test_environment`` installs ``mail.outbox``), never by a
    server serving requests; any other runner opts in by the environment variable.
    """
    if os.environ.get(OPT_IN) == "1" or "pytest" in sys.modules:
        return True
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(main_spec, "name", None) == "unittest.__main__":
        return True
    # Django's setup_test_environment() (its test runner, pytest-django) installs mail.outbox
    mail = sys.modules.get("django.core.mail")
    return mail is not None and hasattr(mail, "outbox")


def _require_test_run(what: str) -> None:
    """:raises ConfigError: not under a test run (see :func:`under_test`)"""
    if not under_test():
        raise ConfigError(_NOT_UNDER_TEST.format(what=what))


def make_identity(
    subject: str | None = "user",
    *,
    issuer: str = TEST_ISSUER,
    scopes: Iterable[str] = (),
    claims: Mapping[str, Any] | None = None,
    now: float | None = None,
    lifetime: float = 300,
) -> Identity:
    """The Identity the middleware would build for a token with these claims.

    The claims are ``iss``, ``sub``, ``aud`` ``"api"``, ``iat``, ``exp`` and ``scope`` (the
    ``scopes`` joined by spaces), then ``claims`` (a None value removes one). Built by the
    middleware's own builder, so ``scopes``, ``acr``, ``amr``, ``binding`` (``cnf.jkt``) read
    exactly as for a real token.
    """
    if isinstance(scopes, str):
        raise TypeError("make_identity: scopes is a list of scopes, e.g. scopes=['read', 'write']")
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"iss": issuer, "sub": subject, "aud": "api", "iat": issued}
    payload["exp"] = int(issued + lifetime)
    if scopes:
        payload["scope"] = " ".join(scopes)
    payload.update(claims or {})
    return identity_from_claims({k: v for k, v in payload.items() if v is not None}, issuer)


class FixedAuthenticator(Authenticator):
    """An Authenticator that decides every request as ``identity``, whatever token it carries.

    The routes still decide as configured: a public rule gives anonymous access, a rule's
    ``scopes`` must be held (403 ``insufficient_scope``), and with ``identity=None`` a protected
    route answers 401 (an optional one passes anonymously). Nothing about a token is checked
    (signature, claims, DPoP proofs, one-time use, ``iat`` windows): that is the point.

    :param identity: the caller every request is (None: an anonymous caller)
    :param config: the app's own Config (rules, realm, issuers, DPoP challenge); default: one
        trusting ``identity``'s issuer, every route required
    :raises ConfigError: not under a test run (:func:`under_test`)
    """

    def __init__(self, identity: Identity | None, config: Config | None = None) -> None:
        _require_test_run("FixedAuthenticator")
        super().__init__(config or _placeholder_config(identity))
        self.identity = identity
        logger.warning(
            "FixedAuthenticator: every request is decided as %s without a token (tests only)",
            "an anonymous caller" if identity is None else repr(identity.subject),
        )

    def check_driver(self, driver: Any) -> None:
        """Any driver: the fixed decision needs no store."""

    def begin(self, request: RequestView) -> Identity | Resume | None:
        """The fixed identity after the route's rule (public, optional, scopes).

        :raises MissingToken: a protected route and ``identity=None``
        :raises InsufficientScope: the rule's scopes are not all held (RFC 6750 §3.1)
        """
        rule = self._ctx.matcher.match(request)
        if rule.access == "public" or (self.identity is None and rule.access == "optional"):
            return None
        if self.identity is None:
            raise MissingToken("missing_token")
        if rule.scopes and not self.identity.scopes.issuperset(rule.scopes):
            raise InsufficientScope("insufficient_scope", params={"scope": " ".join(rule.scopes)})
        return self.identity


def _placeholder_config(identity: Identity | None) -> Config:
    """A Config trusting the identity's issuer with a throw-away key (no token is ever checked)."""
    key = ECKey.generate_key("P-256", {"alg": "ES256"})
    issuer = identity.issuer if identity is not None else TEST_ISSUER
    keys = StaticKeys({"keys": [key.as_dict(private=False)]})
    return Config(issuers=(Issuer(issuer, algorithms=("ES256",), keys=keys),), audience="api")


def as_identity(identity: Identity | None, config: Config | None = None) -> FixedAuthenticator:
    """An Authenticator deciding every request as ``identity``: give it to any adapter in the
    real one's place (``JWTMiddleware(app, as_identity(alice, config))``, ``JWTFlask``,
    Django's ``JWT_MIDDLEWARE_AUTHENTICATOR`` setting), which then attaches the identity
    exactly as for a verified token (``scope["user"]``, ``scope["auth"]``,
    ``scope["jwt_middleware.identity"]``, ``environ["jwt_middleware.identity"]``,
    ``request.user``). See :class:`FixedAuthenticator`.

    :raises ConfigError: not under a test run: pytest, ``python -m unittest``, Django's test
        environment, or ``JWT_MIDDLEWARE_TESTING=1`` (:func:`under_test`)
    """
    return FixedAuthenticator(identity, config)


@contextmanager
def override_identity(target: object, identity: Identity | None) -> Iterator[None]:
    """Within the block, ``target`` decides every request as ``identity``; restored on exit.

    ``target`` is what the app's tests already hold:

    - a :class:`~jwt_middleware.JWTMiddleware` or :class:`~jwt_middleware.WSGIJWTMiddleware`
      (any ASGI or WSGI app: FastAPI, Starlette, Litestar, a Flask ``wsgi_app``): its
      Authenticator is swapped for :func:`as_identity` with the same Config;
    - a Flask app installed with :class:`~jwt_middleware.integrations.flask.JWTFlask`: the same
      for its ``wsgi_app``;
    - a FastAPI app tested without the middleware: ``app.dependency_overrides`` get the
      ``jwt_identity`` / ``require_scopes`` schemes of its routes, each still checking its scopes;
    - ``django.conf.settings``: ``JWT_MIDDLEWARE_AUTHENTICATOR`` is overridden; Django builds
      a test ``Client``'s middleware at its first request, so make the Client in the block.

    :raises TypeError: a target of none of these kinds
    :raises ConfigError: not under a test run (:func:`under_test`)
    """
    _require_test_run("override_identity")
    swap = _swapper(target)
    if swap is None:
        raise TypeError(
            f"override_identity: {type(target).__name__} is none of JWTMiddleware, WSGIJWTMiddleware, "
            "a Flask app with JWTFlask, a FastAPI app, django.conf.settings"
        )
    with swap(identity):
        yield


Swap = Callable[[Identity | None], Any]


def _swapper(target: object) -> Swap | None:
    """How to swap the decision of ``target`` (None: a kind of target this module does not know)."""
    if isinstance(target, JWTMiddleware | WSGIJWTMiddleware):
        return lambda identity: _swapped_authenticator(target, identity)
    flask = sys.modules.get("flask")
    if flask is not None and isinstance(target, flask.Flask):
        return lambda identity: _swapped_flask(target, identity)
    fastapi = sys.modules.get("fastapi")
    if fastapi is not None and isinstance(target, fastapi.FastAPI):
        return lambda identity: _overridden_dependencies(target, identity)
    conf = sys.modules.get("django.conf")
    if conf is not None and target is conf.settings:
        return _overridden_django
    return None


@contextmanager
def _swapped_authenticator(
    adapter: JWTMiddleware | WSGIJWTMiddleware, identity: Identity | None
) -> Iterator[None]:
    real = adapter.authenticator
    adapter.authenticator = as_identity(identity, real.config)
    try:
        yield
    finally:
        adapter.authenticator = real


@contextmanager
def _swapped_flask(app: Any, identity: Identity | None) -> Iterator[None]:
    """The WSGI adapter JWTFlask installed; ``require_scopes`` renders with the same Config."""
    adapter = app.wsgi_app
    if not isinstance(adapter, WSGIJWTMiddleware):
        raise TypeError("override_identity: install the Flask app with JWTFlask(app, authenticator) first")
    with _swapped_authenticator(adapter, identity):
        yield


@contextmanager
def _overridden_dependencies(app: FastAPI, identity: Identity | None) -> Iterator[None]:
    overrides = identity_overrides(app, identity)
    current = app.dependency_overrides
    saved = {scheme: current[scheme] for scheme in overrides if scheme in current}
    app.dependency_overrides.update(overrides)
    try:
        yield
    finally:
        for scheme in overrides:
            app.dependency_overrides.pop(scheme, None)
        app.dependency_overrides.update(saved)


@contextmanager
def _overridden_django(identity: Identity | None) -> Iterator[None]:
    from django.conf import settings
    from django.test import override_settings
    from django.utils.module_loading import import_string

    value = settings.JWT_MIDDLEWARE_AUTHENTICATOR
    real: Authenticator = import_string(value) if isinstance(value, str) else value
    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=as_identity(identity, real.config)):
        yield


def identity_overrides(
    app: FastAPI, identity: Identity | None
) -> dict[Callable[..., Any], Callable[..., Any]]:
    """``app.dependency_overrides`` entries deciding every ``jwt_identity`` / ``require_scopes``
    dependency of ``app``'s routes as ``identity``: ``app.dependency_overrides.update(...)``.

    Each replaces one bearer scheme and still checks the scopes FastAPI gathered for it (403
    ``insufficient_scope`` with the scheme's own challenge; 401 for ``identity=None``), so a
    test sees what a caller holding ``identity``'s scopes would. Routes added later are not
    covered: call it once the app's routes are registered.

    :raises ConfigError: not under a test run (:func:`under_test`)
    """
    _require_test_run("identity_overrides")
    from .integrations.fastapi import _BearerScheme

    found: dict[Callable[..., Any], Callable[..., Any]] = {}
    pending = [route.dependant for route in app.routes if hasattr(route, "dependant")]
    while pending:
        dependant = pending.pop()
        if isinstance(dependant.call, _BearerScheme) and dependant.call not in found:
            found[dependant.call] = _FixedScheme(dependant.call, identity)
        pending.extend(dependant.dependencies)
    return found


class _FixedScheme:
    """A bearer scheme's stand-in: ``identity`` when it holds the gathered scopes."""

    def __init__(self, scheme: Any, identity: Identity | None) -> None:
        from fastapi.security import SecurityScopes

        self.scheme = scheme
        self.identity = identity
        # Why a signature: FastAPI reads the stand-in's parameters to hand it the SecurityScopes
        # of the dependency it replaces (a string annotation here would not resolve).
        parameter = inspect.Parameter(
            "security_scopes", inspect.Parameter.KEYWORD_ONLY, annotation=SecurityScopes
        )
        self.__signature__ = inspect.Signature([parameter], return_annotation=Identity)

    async def __call__(self, security_scopes: Any) -> Identity:
        """:raises Refused: 401 without an identity, 403 ``insufficient_scope`` (RFC 6750 §3.1)"""
        from .integrations._refuse import check_scopes
        from .integrations.fastapi import Refused

        try:
            return check_scopes(self.identity, security_scopes.scopes)
        except Refusal as refusal:
            raise Refused(refusal, authenticator=self.scheme.authenticator, realm=self.scheme.realm) from None
