"""FastAPI: the Identity as a dependency, declared as an HTTP bearer security scheme in OpenAPI.

Wrap the app with :class:`~jwt_middleware.JWTMiddleware` (it decides); these dependencies read
its decision from ``request.scope["jwt_middleware.identity"]`` and add per-endpoint scope checks::

    api = FastAPI()
    api.add_exception_handler(Refused, refusal_handler)      # refusals get the middleware's body

    @api.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)): ...

    @api.delete("/items/{id}")                               # FastAPI's own idiom
    async def delete(identity: Identity = Security(jwt_identity, scopes=["items:delete"])): ...

    @api.get("/items")
    async def items(identity: Identity = Depends(RequireScopes("read"))): ...

    auth = Authenticator(Config(..., rules=(*docs_rules(api), ...)))   # /docs, /redoc, /openapi.json public
    application = JWTMiddleware(api, auth)

Every scope counts: the ones given to :class:`RequireScopes` and every ``Security(...,
scopes=[...])`` on the way from the endpoint to the dependency (FastAPI gathers them into
``SecurityScopes``). A missing one is a 403 ``insufficient_scope``. The operations list them in
OpenAPI (``security: [{"bearerAuth": ["items:delete"]}]``), and the document's
``components.securitySchemes.bearerAuth`` is ``{"type": "http", "scheme": "bearer",
"bearerFormat": "JWT"}``, so ``/docs`` offers the "Authorize" button.

Pass ``authenticator=`` to answer with exactly the middleware's challenge (its realm, a DPoP
challenge next to Bearer); without it the challenge is ``Bearer realm="api"``.
"""

from __future__ import annotations

import inspect
from typing import Final

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.responses import Response

from ..asgi import IDENTITY_KEY
from ..authenticator import Authenticator
from ..challenge import Answer
from ..config import Rule
from ..errors import ConfigError, Refusal
from ..identity import Identity
from ._refuse import check_scopes, docs_rule, header_dict, render, scope_tokens

__all__ = [
    "JWTBearer",
    "Refused",
    "RequireScopes",
    "docs_rules",
    "jwt_identity",
    "refusal_handler",
    "require_scopes",
]

#: FastAPI serves its documentation routes (``FastAPI.setup``) for GET, and so for HEAD
_DOCS_METHODS: Final = ("GET", "HEAD")


class Refused(HTTPException):
    """A dependency's refusal. FastAPI's own handler answers its status and ``WWW-Authenticate``;
    :func:`refusal_handler` answers the middleware's whole response (body included)."""

    def __init__(self, refusal: Refusal, answer: Answer) -> None:
        super().__init__(answer[0], detail=refusal.description, headers=header_dict(answer[1]))
        self.answer = answer


async def refusal_handler(request: Request, exc: Exception) -> Response:
    """The exact answer the middleware would send (status, every header, JSON body) for a
    :class:`Refused`: ``api.add_exception_handler(Refused, refusal_handler)``."""
    if not isinstance(exc, Refused):
        raise exc
    status, headers, body = exc.answer
    response = Response(body, status_code=status)
    response.raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return response


class _BearerScheme(SecurityBase):
    """The ``bearerAuth`` scheme: the Identity holding every scope FastAPI gathered for it."""

    def __init__(self, realm: str, authenticator: Authenticator | None, scheme_name: str) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description="JWT access token")
        self.scheme_name = scheme_name
        self.realm = realm
        self.authenticator = authenticator

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> Identity:
        """:raises Refused: 401 without an identity, 403 ``insufficient_scope`` (RFC 6750 §3.1)"""
        try:
            return check_scopes(request.scope.get(IDENTITY_KEY), security_scopes.scopes)
        except Refusal as refusal:
            raise Refused(refusal, render(refusal, self.realm, self.authenticator)) from None


class RequireScopes:
    """A dependency returning the Identity that holds every one of ``scopes``, and every scope of
    the ``Security(..., scopes=[...])`` declarations that lead to it.

    Listed in OpenAPI as ``bearerAuth`` (HTTP bearer, format JWT) with those scopes. Raises
    :class:`Refused` 401 (no identity: an optional route's anonymous caller) or 403
    (``insufficient_scope``, RFC 6750 §3.1), with the ``WWW-Authenticate`` the middleware would
    send (several challenges joined into one value, RFC 9110 §11.6.1).

    :param scopes: every scope the token must grant (none: any valid token)
    :param realm: the challenge's realm when no ``authenticator`` is given (default ``"api"``)
    :param authenticator: answer exactly as this Authenticator's middleware would
    :param scheme_name: the key in ``components.securitySchemes``
    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3), e.g. ``"a b"``; a
        ``realm`` other than the ``authenticator``'s, which would go unused
    """

    def __init__(
        self,
        *scopes: str,
        realm: str | None = None,
        authenticator: Authenticator | None = None,
        scheme_name: str = "bearerAuth",
    ) -> None:
        self.scopes = scope_tokens("RequireScopes", scopes)
        if realm is not None and authenticator is not None and realm != authenticator.config.realm:
            raise ConfigError(
                "RequireScopes.realm: the authenticator answers with its Config.realm; pass realm= "
                "or authenticator=, not both"
            )
        self.scheme = _BearerScheme(realm or "api", authenticator, scheme_name)
        # Why: FastAPI reads a dependency's parameters from its signature. Declaring the scheme
        # as a Security sub-dependency with these scopes makes FastAPI add them to the
        # SecurityScopes the scheme checks (after the scopes of every Security above) and to
        # the operation's OpenAPI security requirement: one list, enforced and documented.
        requirement = Security(self.scheme, scopes=list(self.scopes))
        parameter = inspect.Parameter(
            "identity", inspect.Parameter.KEYWORD_ONLY, default=requirement, annotation=Identity
        )
        self.__signature__ = inspect.Signature([parameter], return_annotation=Identity)

    async def __call__(self, identity: Identity) -> Identity:
        return identity


#: the earlier name of :class:`RequireScopes`
JWTBearer = RequireScopes

#: a dependency: the Identity of any valid token (401 for an optional route's anonymous caller);
#: ``Security(jwt_identity, scopes=[...])`` requires those scopes
jwt_identity = RequireScopes()


def require_scopes(*scopes: str, authenticator: Authenticator | None = None) -> RequireScopes:
    """A dependency: the Identity, with all ``scopes`` (403 insufficient_scope otherwise).

    :raises ConfigError: ``require_scopes("a b")``: list each scope, ``require_scopes("a", "b")``
    """
    scope_tokens("require_scopes", scopes)
    return RequireScopes(*scopes, authenticator=authenticator)


def docs_rules(app: FastAPI) -> tuple[Rule, ...]:
    """Public GET/HEAD rules for exactly the documentation routes ``app`` serves.

    Mirrors ``FastAPI.setup``: ``openapi_url``, and when it is set ``docs_url`` (with
    ``swagger_ui_oauth2_redirect_url``) and ``redoc_url``; a URL set to None opens nothing.
    Paths are the app's own, below any ``root_path`` (as rules match unless
    ``Config.match_full_path``). List these rules first: the first matching rule wins.

    :raises ConfigError: a documentation URL holding ``*``, which a Rule would read as a prefix
    """
    if not app.openapi_url:
        return ()
    paths = [app.openapi_url]
    if app.docs_url:
        paths.append(app.docs_url)
        if app.swagger_ui_oauth2_redirect_url:
            paths.append(app.swagger_ui_oauth2_redirect_url)
    if app.redoc_url:
        paths.append(app.redoc_url)
    return tuple(docs_rule(path, _DOCS_METHODS) for path in paths)

