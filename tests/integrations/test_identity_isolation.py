"""No request can change what the next request with the same token sees, in any framework; the
Identity goes out as JSON; and with several issuers the framework's user id names the issuer.

The verified-token cache hands every request with one token the same Identity (and the ASGI
adapter the same Starlette user and credentials), so each framework gets one app with the same
routes: ``/tamper`` tries every change a handler could make through what it was handed,
``/look`` reports what a request sees, ``/id`` the framework's user id, ``/identity`` the JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any

import httpx
import pytest
from fastapi import Request  # module level: the frameworks resolve string annotations in globals
from litestar import Request as LitestarRequest

from jwt_middleware import Authenticator, Config, Identity, Issuer, JWTMiddleware, Rule, StaticKeys
from jwt_middleware.identity import plain
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from . import apps

CORP, PARTNER = "https://corp.test", "https://partner.test"
KEYS = {CORP: make_key("ES256", kid="corp-1"), PARTNER: make_key("ES256", kid="partner-1")}
CLOCK = FakeClock(1_800_000_000.0)
CLAIMS: dict[str, Any] = {"sub": "alice", "scope": "read", "roles": ["viewer"], "org": {"name": "acme", "teams": ["a"]}}

#: (path, token) → the response
Get = Callable[[str, str], httpx.Response]


def authenticator(*issuers: str) -> Authenticator:
    trusted = tuple(Issuer(i, algorithms=("ES256",), keys=StaticKeys(public_jwks(KEYS[i]))) for i in issuers)
    return Authenticator(Config(issuers=trusted, audience="api", rules=(Rule("/public", access="public"),),
                                clock=CLOCK))


def token(issuer: str = CORP) -> str:
    return mint(KEYS[issuer], dict(CLAIMS), issuer=issuer, now=CLOCK.now)


# --- what every app's handlers do ----------------------------------------------------------


def tamper(identity: Identity, user: Any = None, auth: Any = None) -> dict[str, str]:
    """Try each change a handler could make through what it was handed; say which went through."""
    escalated = dataclasses.replace(identity, scopes=frozenset({"read", "admin"}))
    claims: Any = identity.claims  # as a handler that takes it for a dict would
    attempts: dict[str, Callable[[], object]] = {
        "claims[scope] = ...": lambda: claims.__setitem__("scope", "read admin"),
        "claims.update(...)": lambda: claims.update(sub="root"),
        "claims[org][name] = ...": lambda: claims["org"].__setitem__("name", "evil"),
        "claims[roles].append(...)": lambda: claims["roles"].append("admin"),
        "claims[org][teams].append(...)": lambda: claims["org"]["teams"].append("all"),
        "identity.scopes = ...": lambda: setattr(identity, "scopes", escalated.scopes),
    }
    if user is not None:
        attempts["user.principal = ..."] = lambda: setattr(user, "principal", escalated)
        attempts["user._identity = ..."] = lambda: setattr(user, "_identity", "root")
    if auth is not None:
        attempts["auth.scopes.append(...)"] = lambda: auth.scopes.append("admin")
        attempts["auth.scopes = ..."] = lambda: setattr(auth, "scopes", ["read", "admin"])
    outcome: dict[str, str] = {}
    for name, attempt in attempts.items():
        try:
            attempt()
        except (TypeError, AttributeError):
            outcome[name] = "refused"
        else:
            outcome[name] = "changed"
    return outcome


def look(identity: Identity, user_id: str, auth: Any = None, user: Any = None) -> dict[str, Any]:
    """What this request sees, and which objects it was handed (the same ones each time)."""
    seen = {"scopes": sorted(identity.scopes), "claims": plain(identity.claims), "user": user_id,
            "objects": [id(identity)]}
    if auth is not None:
        seen["auth"] = list(auth.scopes)
        seen["objects"] += [id(auth), id(user)]
    return seen


# --- one app per framework -----------------------------------------------------------------


@contextmanager
def asgi(app: Any) -> Iterator[Get]:
    def get(path: str, bearer: str) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://api.test") as client:
                return await client.get(path, headers={"authorization": f"Bearer {bearer}"})

        return asyncio.run(go())

    yield get


@contextmanager
def wsgi(app: Any) -> Iterator[Get]:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://api.test") as client:
        yield lambda path, bearer: client.get(path, headers={"authorization": f"Bearer {bearer}"})


def starlette(auth: Authenticator) -> AbstractContextManager[Get]:
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from jwt_middleware.integrations.starlette import identity

    def caller(request: Request) -> Identity:
        found = identity(request)
        assert found is not None and found is request.user.principal
        return found

    async def tamper_view(request: Request) -> JSONResponse:
        return JSONResponse(tamper(caller(request), request.user, request.auth))

    async def look_view(request: Request) -> JSONResponse:
        return JSONResponse(look(caller(request), request.user.identity, request.auth, request.user))

    async def id_view(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.user.identity})

    async def identity_view(request: Request) -> JSONResponse:
        return JSONResponse(caller(request).to_dict())

    @requires("admin")
    async def admin_view(request: Request) -> JSONResponse:
        return JSONResponse({"admin": True})

    views = {"/tamper": tamper_view, "/look": look_view, "/id": id_view, "/identity": identity_view,
             "/admin": admin_view}
    return asgi(JWTMiddleware(Starlette(routes=[Route(p, v) for p, v in views.items()]), auth))


def fastapi(auth: Authenticator) -> AbstractContextManager[Get]:
    from fastapi import Depends, FastAPI

    from jwt_middleware.integrations.fastapi import jwt_identity

    api = FastAPI()
    caller: Any = Depends(jwt_identity)

    @api.get("/tamper")
    async def tamper_view(request: Request, identity: Identity = caller) -> dict[str, str]:
        return tamper(identity, request.user, request.auth)

    @api.get("/look")
    async def look_view(request: Request, identity: Identity = caller) -> dict[str, Any]:
        return look(identity, request.user.identity, request.auth, request.user)

    @api.get("/id")
    async def id_view(request: Request) -> dict[str, str]:
        return {"id": request.user.identity}

    @api.get("/identity")
    async def identity_view(identity: Identity = caller) -> dict[str, Any]:
        return identity.to_dict()

    @api.get("/identity-returned", response_model=None)  # jsonable_encoder (dataclasses.asdict)
    async def returned(identity: Identity = caller) -> Any:
        return identity

    @api.get("/identity-model")  # the dataclass as the response model (pydantic's serialiser)
    async def as_model(identity: Identity = caller) -> Identity:
        return identity

    return asgi(JWTMiddleware(api, auth))


def litestar(auth: Authenticator) -> AbstractContextManager[Get]:
    from litestar import Litestar, get

    from jwt_middleware.integrations.litestar import identity, wrap

    def caller(request: LitestarRequest[Any, Any, Any]) -> Identity:
        found = identity(request)
        assert found is not None and found is request.user.principal
        return found

    @get("/tamper")
    async def tamper_view(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
        return tamper(caller(request), request.user, request.auth)

    @get("/look")
    async def look_view(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
        return look(caller(request), request.user.identity, request.auth, request.user)

    @get("/id")
    async def id_view(request: LitestarRequest[Any, Any, Any]) -> dict[str, str]:
        return {"id": request.user.identity}

    @get("/identity")
    async def identity_view(request: LitestarRequest[Any, Any, Any]) -> Identity:  # msgspec encodes it
        return caller(request)

    return asgi(wrap(Litestar(route_handlers=[tamper_view, look_view, id_view, identity_view]), auth))


def flask(auth: Authenticator) -> AbstractContextManager[Get]:
    from flask import Flask, Response, jsonify

    from jwt_middleware.integrations.flask import JWTFlask, current_identity, current_user_id

    app = Flask(__name__)

    def caller() -> Identity:
        found = current_identity()
        assert found is not None
        return found

    @app.get("/tamper")
    def tamper_view() -> dict[str, str]:
        return tamper(caller())

    @app.get("/look")
    def look_view() -> dict[str, Any]:
        return look(caller(), current_user_id() or "")

    @app.get("/id")
    def id_view() -> dict[str, Any]:
        return {"id": current_user_id()}

    @app.get("/identity")
    def identity_view() -> Response:
        return jsonify(caller().to_dict())

    @app.get("/claims")
    def claims_view() -> Response:
        return jsonify(caller().claims)

    JWTFlask(app, auth)
    return wsgi(app)


# Django: this module is the URLconf while a test runs (override_settings below).


def _django_caller(request: Any) -> Identity:
    found: Identity | None = request.jwt_identity
    assert found is not None and found is request.user.principal
    return found


def _django_tamper(request: Any) -> Any:
    from django.http import JsonResponse

    outcome = tamper(_django_caller(request))
    request.user.username = request.user.identity = "root"  # its own object: nobody else sees it
    return JsonResponse(outcome)


def _django_look(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse(look(_django_caller(request), request.user.username))


def _django_id(request: Any) -> Any:
    from django.http import JsonResponse

    user = request.user
    assert user.identity == user.username == user.get_username() == str(user) == user.pk == user.id
    return JsonResponse({"id": user.username})


def _django_identity(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse(_django_caller(request).to_dict())


def _urlpatterns() -> list[Any]:
    apps.django_wsgi_app()  # settings configured once per process
    from django.urls import path

    views = {"tamper": _django_tamper, "look": _django_look, "id": _django_id, "identity": _django_identity}
    return [path(name, view) for name, view in views.items()]


urlpatterns = _urlpatterns()


@contextmanager
def django(mode: str, auth: Authenticator) -> Iterator[Get]:
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application
    from django.test import override_settings

    with override_settings(ROOT_URLCONF=__name__, JWT_MIDDLEWARE_AUTHENTICATOR=auth):
        serve = asgi(get_asgi_application()) if mode == "asgi" else wsgi(get_wsgi_application())
        with serve as get:
            yield get


FRAMEWORKS: dict[str, Callable[[Authenticator], AbstractContextManager[Get]]] = {
    "starlette": starlette,
    "fastapi": fastapi,
    "litestar": litestar,
    "flask": flask,
    "django-wsgi": partial(django, "wsgi"),
    "django-asgi": partial(django, "asgi"),
}
#: where the framework hands the handler more than the Identity (its own user and credentials)
SHARED_USER = {"starlette", "fastapi", "litestar"}


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_a_handler_cannot_change_what_the_next_request_with_its_token_sees(framework: str) -> None:
    bearer = token()
    with FRAMEWORKS[framework](authenticator(CORP)) as get:
        before = get("/look", bearer).json()
        attempts = get("/tamper", bearer).json()
        after = get("/look", bearer).json()
    assert before["claims"] == {**CLAIMS, "iss": CORP, "aud": "api", "iat": before["claims"]["iat"],
                                "exp": before["claims"]["exp"], "jti": before["claims"]["jti"]}
    assert len(attempts) == (10 if framework in SHARED_USER else 6)
    assert attempts == dict.fromkeys(attempts, "refused")  # each attempt raised, none went through
    assert after == before and after["scopes"] == ["read"] and after["user"] == "alice"
    if framework in SHARED_USER:
        assert after["auth"] == ["read"]
    # the premise: the next request was handed the very objects the first one tried to change
    assert len(after["objects"]) == (3 if framework in SHARED_USER else 1)


def test_starlette_requires_still_refuses_after_a_handler_tried_to_add_the_scope() -> None:
    bearer = token()
    with starlette(authenticator(CORP)) as get:
        assert get("/admin", bearer).status_code == 403
        assert set(get("/tamper", bearer).json().values()) == {"refused"}
        assert get("/admin", bearer).status_code == 403


IDENTITY_ROUTES = {
    "starlette": ["/identity"],
    "fastapi": ["/identity", "/identity-returned", "/identity-model"],
    "litestar": ["/identity"],
    "flask": ["/identity"],
    "django-wsgi": ["/identity"],
    "django-asgi": ["/identity"],
}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_the_identity_goes_out_as_json(framework: str) -> None:
    bearer = token()
    with FRAMEWORKS[framework](authenticator(CORP)) as get:
        documents = [get(path, bearer) for path in IDENTITY_ROUTES[framework]]
    for response in documents:
        assert response.status_code == 200, response.text
        document = response.json()
        assert document["subject"] == "alice" and document["issuer"] == CORP
        assert document["claims"]["roles"] == ["viewer"] and document["claims"]["org"] == CLAIMS["org"]
        assert sorted(document["scopes"]) == ["read"] and document["expires_at"] == document["claims"]["exp"]


def test_flask_jsonify_takes_the_claims_as_they_are() -> None:
    bearer = token()
    with flask(authenticator(CORP)) as get:
        claims = get("/claims", bearer).json()
    assert claims["org"] == CLAIMS["org"] and claims["roles"] == ["viewer"]


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_the_user_id_names_the_issuer_when_several_are_trusted(framework: str) -> None:
    """``alice`` of a partner IdP is not ``alice`` of the corporate one (OpenID Connect Core §2)."""
    with FRAMEWORKS[framework](authenticator(CORP)) as get:
        assert get("/id", token(CORP)).json() == {"id": "alice"}  # one issuer: the bare sub, as before
        assert get("/id", token(PARTNER)).status_code == 401
    with FRAMEWORKS[framework](authenticator(CORP, PARTNER)) as get:
        ids = [get("/id", token(issuer)).json()["id"] for issuer in (CORP, PARTNER)]
    assert ids == ["https://corp.test#alice", "https://partner.test#alice"]


def test_flask_user_id_needs_the_extension_to_know_the_issuers() -> None:
    from flask import Flask

    from jwt_middleware import WSGIJWTMiddleware
    from jwt_middleware.integrations.flask import current_user_id

    app = Flask(__name__)

    @app.get("/id")
    def id_view() -> dict[str, Any]:
        try:
            return {"id": current_user_id()}
        except RuntimeError as exc:
            return {"error": str(exc)}

    app.wsgi_app = WSGIJWTMiddleware(app.wsgi_app, authenticator(CORP, PARTNER))  # type: ignore[method-assign]
    with wsgi(app) as get:
        assert "JWTFlask" in get("/id", token()).json()["error"]


def test_issuers_use_their_own_keys() -> None:
    """The two-issuer table means something only if each token is accepted for its own issuer."""
    forged = mint(KEYS[CORP], dict(CLAIMS), issuer=PARTNER, now=CLOCK.now)
    with starlette(authenticator(CORP, PARTNER)) as get:
        assert get("/id", forged).status_code == 401



@pytest.mark.parametrize("issuers", [(CORP,), (CORP, PARTNER)], ids=["one-issuer", "two-issuers"])
def test_starlette_pair_equals_the_plain_construction(issuers: tuple[str, ...]) -> None:
    """The middleware builds the pair through slot setters; the classes' own __init__ agree."""
    from jwt_middleware.identity import identity_from_claims, qualified_ids
    from jwt_middleware.starlette_user import JWTCredentials, JWTUser, starlette_pair

    config = authenticator(*issuers).config
    caller = identity_from_claims({**CLAIMS, "scope": "write read"}, CORP)
    user, credentials = starlette_pair(caller, config)
    plain_user, plain_credentials = JWTUser(caller, qualified_ids(config)), JWTCredentials(caller.scopes)
    assert (user.principal, user.identity, user.display_name) == (
        plain_user.principal, plain_user.identity, plain_user.display_name)
    assert user.identity == ("alice" if len(issuers) == 1 else "https://corp.test#alice")
    both: tuple[object, object] = (credentials.scopes, plain_credentials.scopes)  # typed list[str] by the base
    assert both == (("read", "write"), ("read", "write"))
    assert starlette_pair(caller)[0].identity == "alice"  # no config: the bare sub
    for made in (user, plain_user, credentials, plain_credentials):
        with pytest.raises(AttributeError):
            made.scopes = ["admin"]  # type: ignore[union-attr]
