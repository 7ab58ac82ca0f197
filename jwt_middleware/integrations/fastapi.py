"""FastAPI: the Identity as a dependency, declared as an HTTP bearer security scheme in OpenAPI.

Wrap the app with :class:`~jwt_middleware.JWTMiddleware` (it decides); these dependencies read
its decision and add per-endpoint scope checks::

    app = FastAPI()
    @app.get("/items")
    async def items(identity: Identity = Depends(require_scopes("read"))): ...
    application = JWTMiddleware(app, authenticator)

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

__all__ = ["JWTBearer", "require_scopes"]


class JWTBearer(SecurityBase):
    """A security dependency returning the Identity; listed as ``bearerAuth`` (HTTP bearer, JWT).

    Raises ``HTTPException`` 401 (no identity: an optional route's anonymous caller) or 403
    (``insufficient_scope``), with the ``WWW-Authenticate`` the middleware would send.
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
        identity: Identity | None = request.scope.get(IDENTITY_KEY)
        try:
            check_scopes(identity, self.scopes)
        except Refusal as refusal:
            status, headers, _ = render(refusal, self.realm, self.authenticator)
            raise HTTPException(status, detail=refusal.description, headers=header_dict(headers)) from None
        assert identity is not None
        return identity


def require_scopes(*scopes: str, authenticator: Authenticator | None = None) -> JWTBearer:
    """A dependency: the Identity, with all ``scopes`` (403 insufficient_scope otherwise)."""
    return JWTBearer(*scopes, authenticator=authenticator)
