"""FastAPI: the Identity as a dependency, declared as an HTTP bearer security scheme in OpenAPI.

Wrap the app with :class:`~jwt_middleware.JWTMiddleware` (it decides); these dependencies read
its decision from ``request.scope["jwt_middleware.identity"]`` and add per-endpoint scope checks::

    app = FastAPI()

    @app.get("/me")
    async def me(identity: Identity = Depends(jwt_identity)): ...

    @app.get("/items")
    async def items(identity: Identity = Depends(RequireScopes("read"))): ...

    application = JWTMiddleware(app, authenticator)

Every operation using one of them lists ``security: [{"bearerAuth": []}]``, and the document's
``components.securitySchemes.bearerAuth`` is ``{"type": "http", "scheme": "bearer",
"bearerFormat": "JWT"}``, so ``/docs`` offers the "Authorize" button.

Pass ``authenticator=`` to answer with exactly the middleware's challenge (its realm, a DPoP
challenge next to Bearer); without it the challenge is ``Bearer realm="api"``.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from ..asgi import IDENTITY_KEY
from ..authenticator import Authenticator
from ..errors import Refusal
from ..identity import Identity
from ._refuse import check_scopes, header_dict, render

__all__ = ["JWTBearer", "RequireScopes", "jwt_identity", "require_scopes"]


class RequireScopes(SecurityBase):
    """A security dependency returning the Identity that holds every one of ``scopes``.

    Listed in OpenAPI as ``bearerAuth`` (HTTP bearer, format JWT). Raises ``HTTPException``
    401 (no identity: an optional route's anonymous caller) or 403 (``insufficient_scope``,
    RFC 6750 §3.1), with the ``WWW-Authenticate`` the middleware would send (several
    challenges joined into one value, RFC 9110 §11.6.1).

    :param scopes: every scope the token must grant (none: any valid token)
    :param realm: the challenge's realm when no ``authenticator`` is given
    :param authenticator: answer exactly as this Authenticator's middleware would
    :param scheme_name: the key in ``components.securitySchemes``
    """

    def __init__(
        self,
        *scopes: str,
        realm: str = "api",
        authenticator: Authenticator | None = None,
        scheme_name: str = "bearerAuth",
    ) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description="JWT access token")
        self.scheme_name = scheme_name
        self.scopes = tuple(scopes)
        self.realm = realm
        self.authenticator = authenticator

    async def __call__(self, request: Request) -> Identity:
        try:
            return check_scopes(request.scope.get(IDENTITY_KEY), self.scopes)
        except Refusal as refusal:
            status, headers, _ = render(refusal, self.realm, self.authenticator)
            raise HTTPException(status, detail=refusal.description, headers=header_dict(headers)) from None


#: the earlier name of :class:`RequireScopes`
JWTBearer = RequireScopes

#: a dependency: the Identity of any valid token (401 for an optional route's anonymous caller)
jwt_identity = RequireScopes()


def require_scopes(*scopes: str, authenticator: Authenticator | None = None) -> RequireScopes:
    """A dependency: the Identity, with all ``scopes`` (403 insufficient_scope otherwise)."""
    return RequireScopes(*scopes, authenticator=authenticator)
