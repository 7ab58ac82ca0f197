"""Flask behind WSGIJWTMiddleware. Run: ``gunicorn --threads 4 examples.flask_app:app``"""

from typing import Any

from flask import Flask

from jwt_middleware.integrations.flask import JWTFlask, current_identity, require_scopes

from ._shared import authenticator

app = Flask(__name__)


@app.get("/")
def home() -> dict[str, Any]:
    return {"hello": "anyone"}


@app.get("/me")
def me() -> dict[str, Any]:
    caller = current_identity()
    assert caller is not None  # the middleware refused anonymous requests already
    return {"sub": caller.subject, "scopes": sorted(caller.scopes)}


@app.get("/admin")
@require_scopes("admin")
def admin() -> dict[str, Any]:
    return {"admin": current_identity().subject}  # type: ignore[union-attr]


JWTFlask(app, authenticator())
