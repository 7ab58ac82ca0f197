"""FastAPI behind JWTMiddleware, with the bearer scheme in /docs. Run: ``uvicorn examples.fastapi_app:app``"""

from typing import Any

from fastapi import Depends, FastAPI

from jwt_middleware import Identity, JWTMiddleware
from jwt_middleware.integrations.fastapi import docs_rules, jwt_identity, require_scopes

from ._shared import authenticator

api = FastAPI(title="jwt_middleware example")


@api.get("/")
async def home() -> dict[str, Any]:
    return {"hello": "anyone"}


@api.get("/me")
async def me(identity: Identity = Depends(jwt_identity)) -> dict[str, Any]:
    return {"sub": identity.subject, "scopes": sorted(identity.scopes)}


@api.get("/admin")
async def admin(identity: Identity = Depends(require_scopes("admin"))) -> dict[str, Any]:
    return {"admin": identity.subject}


# /docs, /redoc, /openapi.json public; a dependency's refusal gets the middleware's own answer
app = JWTMiddleware(api, authenticator(*docs_rules(api)))
