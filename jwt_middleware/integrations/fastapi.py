"""FastAPI: the Identity as a dependency, declared as an HTTP bearer security scheme in OpenAPI.

Wrap the app with :class:`~jwt_middleware.JWTMiddleware` (it decides); these dependencies read
its decision from ``request.scope["jwt_middleware.identity"]`` and add per-endpoint scope checks::

    api = FastAPI()

    @api.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)): ...

    @api.get("/items")
    async def items(identity: Identity = Depends(require_scopes("read"))): ...

    @api.delete("/items/{id}")                               # FastAPI's own idiom
    async def delete(identity: Identity = Security(jwt_identity, scopes=["items:delete"])): ...

    auth = Authenticator(Config(..., rules=(*docs_rules(api), ...)))   # /docs, /redoc, /openapi.json public
    application = JWTMiddleware(api, auth)       # or api.add_middleware(JWTMiddleware, authenticator=auth)

Every scope counts: the ones given to :func:`require_scopes` and every ``Security(...,
scopes=[...])`` on the way from the endpoint to the dependency (FastAPI gathers them into
``SecurityScopes``). A missing one is a 403 ``insufficient_scope``. The operations list them in
OpenAPI (``security: [{"bearerAuth": ["items:delete"]}]``), and the document's
``components.securitySchemes.bearerAuth`` is ``{"type": "http", "scheme": "bearer",
"bearerFormat": "JWT"}``, so ``/docs`` offers the "Authorize" button.

A dependency's refusal is a :class:`Refused`; JWTMiddleware registers the handler that answers
it exactly as the middleware answers its own (status, challenge, the body ``Config.on_refusal``
shapes), with no ``add_exception_handler`` of yours. To answer refusals with FastAPI's own
error handling instead, register your handler for ``Refused``
(``api.add_exception_handler(Refused, handler)``): the app's own handler wins. ``exc.refusal``
is the Refusal, ``exc.headers`` the challenge to keep.
"""

from __future__ import annotations

import inspect
from typing import Final

from fastapi import FastAPI, Request, Security
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from ..asgi import IDENTITY_KEY
from ..authenticator import Authenticator
from ..config import Rule
from ..errors import ConfigError, Refusal
from ..identity import Identity
from ._refuse import check_scopes, docs_rule, scope_tokens
from .starlette import Refused, refusal_handler

__all__ = ["Refused", "docs_rules", "jwt_identity", "refusal_handler", "require_scopes"]

#: FastAPI serves its documentation routes (``FastAPI.setup``) for GET, and so for HEAD
_DOCS_METHODS: Final = ("GET", "HEAD")


class _BearerScheme(SecurityBase):
    """The ``bearerAuth`` scheme: the Identity holding every scope FastAPI gathered for it."""

    def __init__(self, realm: str | None, authenticator: Authenticator | None, scheme_name: str) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description="JWT access token")
        self.scheme_name = scheme_name
        self.realm = realm
        self.authenticator = authenticator

    async def __call__(self, request: Request, security_scopes: SecurityScopes) -> Identity:
        """:raises Refused: 401 without an identity, 403 ``insufficient_scope`` (RFC 6750 §3.1)"""
        try:
            return check_scopes(request.scope.get(IDENTITY_KEY), security_scopes.scopes)
        except Refusal as refusal:
            raise Refused(refusal, authenticator=self.authenticator, realm=self.realm) from None


class ScopesDependency:
    """The dependency :func:`require_scopes` returns (and :data:`jwt_identity` is): the Identity
    holding every one of its scopes and every scope of the ``Security(..., scopes=[...])``
    declarations that lead to it. Importable for annotations; build it with :func:`require_scopes`.
    """

    def __init__(
        self,
        *scopes: str,
        realm: str | None = None,
        authenticator: Authenticator | None = None,
        scheme_name: str = "bearerAuth",
    ) -> None:
        self.scopes = scope_tokens("require_scopes", scopes)
        if realm is not None and authenticator is not None and realm != authenticator.config.realm:
            raise ConfigError(
                "require_scopes.realm: the authenticator answers with its Config.realm; pass realm= "
                "or authenticator=, not both"
            )
        self.scheme = _BearerScheme(realm, authenticator, scheme_name)
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


#: a dependency: the Identity of any valid token (401 for an optional route's anonymous caller);
#: ``Security(jwt_identity, scopes=[...])`` requires those scopes
jwt_identity = ScopesDependency()


def require_scopes(
    *scopes: str,
    realm: str | None = None,
    authenticator: Authenticator | None = None,
    scheme_name: str = "bearerAuth",
) -> ScopesDependency:
    """A dependency: the Identity holding every one of ``scopes`` (and of the ``Security(...,
    scopes=[...])`` declarations leading to it): ``Depends(require_scopes("read"))``.

    Listed in OpenAPI as ``bearerAuth`` (HTTP bearer, format JWT) with those scopes. Refuses with
    :class:`Refused`: 401 (no identity: an optional route's anonymous caller) or 403
    (``insufficient_scope``, RFC 6750 §3.1), answered as the middleware answers.

    :param scopes: every scope the token must grant (none: any valid token, as :data:`jwt_identity`)
    :param realm: the challenge's realm, for an app the middleware does not wrap (default ``"api"``)
    :param authenticator: answer as this Authenticator (default: the wrapping middleware's)
    :param scheme_name: the key in ``components.securitySchemes``
    :raises ConfigError: a scope that is not one scope token (RFC 6749 §3.3): list each scope,
        ``require_scopes("a", "b")``; a ``realm`` other than the ``authenticator``'s
    """
    return ScopesDependency(*scopes, realm=realm, authenticator=authenticator, scheme_name=scheme_name)


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
