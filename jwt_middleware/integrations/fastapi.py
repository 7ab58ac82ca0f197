"""FastAPI: the Identity as a dependency, declared as an HTTP bearer security scheme in OpenAPI.

Wrap the app with :class:`~jwt_middleware.JWTMiddleware` (it decides); these dependencies read
its decision and add per-endpoint scope checks::

    app = FastAPI()
    @app.get("/items")
    async def items(identity: Identity = Depends(require_scopes("read"))): ...
    application = JWTMiddleware(app, authenticator)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from ..asgi import IDENTITY_KEY
from ..errors import Refusal
from ..identity import Identity
from ._refuse import check_scopes, render

__all__ = ["JWTBearer", "require_scopes"]


class JWTBearer(SecurityBase):
    """A security dependency returning the Identity; listed as ``bearerAuth`` (HTTP bearer, JWT)."""

    def __init__(self, *scopes: str, realm: str = "api") -> None:
        self.model: Any = HTTPBearerModel(bearerFormat="JWT", description="JWT access token")
        self.scheme_name = "bearerAuth"
        self.scopes = tuple(scopes)
        self.realm = realm

    async def __call__(self, request: Request) -> Identity:
        identity = request.scope.get(IDENTITY_KEY)
        try:
            check_scopes(identity, self.scopes)
        except Refusal as refusal:
            status, headers, _ = render(refusal, self.realm)
            raise HTTPException(
                status,
                detail=refusal.description,
                headers={k: v for k, v in headers if k == "www-authenticate"},
            ) from None
        assert identity is not None
        return identity  # type: ignore[no-any-return]


def require_scopes(*scopes: str) -> Callable[..., Any]:
    """A dependency: the Identity, with all ``scopes`` (403 insufficient_scope otherwise)."""
    return JWTBearer(*scopes)
