"""Replay windows for bearer tokens: one-time jti and iat windows per rule."""

from __future__ import annotations

import asyncio

import httpx
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, Rule, StaticKeys
from jwt_middleware.testing import FakeClock, mint, public_jwks

ISSUER = "https://issuer.test"


def make_app(key: Key, clock: FakeClock, *issuers: Issuer) -> tuple[JWTMiddleware, list[str]]:
    calls: list[str] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        calls.append(request.url.path)
        return PlainTextResponse("ok")

    config = Config(
        issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key))), *issuers],
        audience="api",
        rules=(
            Rule("/pay", one_time=True, scopes=("pay",)),
            Rule("/fresh", iat_window=60),
        ),
        clock=clock,
    )
    routes = [Route(p, endpoint) for p in ("/pay", "/fresh", "/me")]
    return JWTMiddleware(Starlette(routes=routes), Authenticator(config)), calls


async def get(app: JWTMiddleware, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as client:
        return await client.get(path, headers={"authorization": f"Bearer {token}"})


async def test_one_time_token_is_refused_on_second_use(es256_key: Key, clock: FakeClock) -> None:
    app, calls = make_app(es256_key, clock)
    token = mint(es256_key, {"scope": "pay"}, issuer=ISSUER, now=clock.now)
    assert (await get(app, "/pay", token)).status_code == 200
    again = await get(app, "/pay", token)
    assert again.status_code == 401 and 'error="invalid_token"' in again.headers["www-authenticate"]
    assert calls == ["/pay"]
    assert (await get(app, "/me", token)).status_code == 200  # other routes are not one-time


async def test_one_time_token_without_jti_is_refused(es256_key: Key, clock: FakeClock) -> None:
    app, calls = make_app(es256_key, clock)
    token = mint(es256_key, {"scope": "pay", "jti": None}, issuer=ISSUER, now=clock.now)
    assert (await get(app, "/pay", token)).status_code == 401 and calls == []


async def test_scope_refusal_does_not_burn_a_one_time_token(es256_key: Key, clock: FakeClock) -> None:
    app, _ = make_app(es256_key, clock)
    weak = mint(es256_key, {"scope": "read", "jti": "j-1"}, issuer=ISSUER, now=clock.now)
    assert (await get(app, "/pay", weak)).status_code == 403
    strong = mint(es256_key, {"scope": "pay", "jti": "j-1"}, issuer=ISSUER, now=clock.now)
    assert (await get(app, "/pay", strong)).status_code == 200


async def test_one_time_token_is_remembered_until_it_expires(es256_key: Key, clock: FakeClock) -> None:
    app, _ = make_app(es256_key, clock)
    token = mint(es256_key, {"scope": "pay"}, issuer=ISSUER, now=clock.now, lifetime=300)
    assert (await get(app, "/pay", token)).status_code == 200
    clock.advance(300 + 29)  # still inside exp + leeway: still a replay
    assert (await get(app, "/pay", token)).status_code == 401


async def test_same_jti_from_two_issuers_do_not_collide(es256_key: Key, clock: FakeClock) -> None:
    from jwt_middleware.testing import make_key

    other = make_key("ES256", kid="other-1")
    second = Issuer("https://second.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(other)))
    app, _ = make_app(es256_key, clock, second)
    first = mint(es256_key, {"scope": "pay", "jti": "shared"}, issuer=ISSUER, now=clock.now)
    theirs = mint(other, {"scope": "pay", "jti": "shared"}, issuer="https://second.test", now=clock.now)
    assert (await get(app, "/pay", first)).status_code == 200
    assert (await get(app, "/pay", theirs)).status_code == 200


async def test_concurrent_uses_of_one_time_token_let_exactly_one_through(es256_key: Key, clock: FakeClock) -> None:
    app, calls = make_app(es256_key, clock)
    token = mint(es256_key, {"scope": "pay"}, issuer=ISSUER, now=clock.now)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as client:
        responses = await asyncio.gather(
            *(client.get("/pay", headers={"authorization": f"Bearer {token}"}) for _ in range(40))
        )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 39
    assert calls == ["/pay"]


async def test_token_outside_iat_window_is_refused_even_before_exp(es256_key: Key, clock: FakeClock) -> None:
    app, calls = make_app(es256_key, clock)
    old = mint(es256_key, issuer=ISSUER, now=clock.now - 120, lifetime=3600)
    assert (await get(app, "/me", old)).status_code == 200
    response = await get(app, "/fresh", old)
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]
    fresh = mint(es256_key, issuer=ISSUER, now=clock.now - 30)
    assert (await get(app, "/fresh", fresh)).status_code == 200
    assert calls == ["/me", "/fresh"]
