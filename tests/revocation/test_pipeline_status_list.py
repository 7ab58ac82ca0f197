"""Token Status Lists in the pipeline (issue 12): every request of an issuer with a status_list
policy, verified-cache hits included, is judged by that issuer's list, fetched over real HTTPS
(certificate from the test CA) and verified with the issuer's own keys.

Real parts only: Starlette through httpx's ASGITransport, Flask through werkzeug's test client
(run in worker threads, as a threaded WSGI server runs it), the status-list tests' HTTPS server.
Lists are compressed by Python's zlib and signed by joserfc in the test, never by our code.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trustme
from flask import Flask
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from werkzeug.test import Client

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, Rule, StaticKeys, WSGIJWTMiddleware
from jwt_middleware.errors import ConfigError, InvalidToken
from jwt_middleware.revocation.status_list import StatusListPolicy
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks
from tests.revocation.test_status_list_support import (
    StatusListServer,
    encode_lst,
    list_claims,
    sign_list_token,
    start_status_server,
)
from tests.support.audit_capture import audit_events

NOW = 1_800_000_000.0
PATH = "/statuslists/1"
TTL = 600  # the published lists' ttl (seconds)
STALE = 300.0  # StatusListPolicy.stale_if_error (the default)
FACES = ("asgi", "wsgi")


@pytest.fixture(scope="module")
def key() -> Key:
    return make_key("ES256", kid="issuer-1")


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[StatusListServer]:
    status_server = start_status_server(ca)
    yield status_server
    status_server.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


class Face:
    """One app behind the middleware, ASGI or WSGI, and the issuer it trusts (the server's origin)."""

    def __init__(self, kind: str, auth: Authenticator) -> None:
        self.kind = kind
        self.auth = auth
        self._asgi: httpx.AsyncClient | None = None
        self._wsgi: Client | None = None
        if kind == "asgi":
            app = Starlette(routes=[Route("/me", me), Route("/admin", me)])
            transport = httpx.ASGITransport(app=JWTMiddleware(app, auth))
            self._asgi = httpx.AsyncClient(transport=transport, base_url="http://test")
        else:
            flask = Flask(__name__)
            flask.add_url_rule("/me", "me", lambda: "ok")
            flask.add_url_rule("/admin", "admin", lambda: "ok")
            self._wsgi = Client(WSGIJWTMiddleware(flask.wsgi_app, auth))

    async def get(self, token: str, path: str = "/me") -> Answer:
        headers = {"authorization": f"Bearer {token}"}
        if self._asgi is not None:
            response = await self._asgi.get(path, headers=headers)
            return Answer(response.status_code, dict(response.headers), _json(response.content))
        assert self._wsgi is not None
        # a worker thread, as a threaded WSGI server runs the app: never on the test's event loop
        result = await asyncio.to_thread(self._wsgi.get, path, headers=headers)
        return Answer(result.status_code, dict(result.headers), _json(result.data))

    async def close(self) -> None:
        if self._asgi is not None:
            await self._asgi.aclose()


async def me(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _json(data: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(data) if data[:1] == b"{" else {}
    return parsed


class World:
    """The issuer (the status server's origin), its list, the clock, and tokens that reference it."""

    def __init__(self, server: StatusListServer, key: Key, tls: ssl.SSLContext, **policy: Any) -> None:
        self.server = server
        self.key = key
        self.clock = FakeClock(NOW)
        self.issuer = server.url
        self.uri = server.url + PATH
        options: dict[str, Any] = {"tls": tls, "fetch_timeout": 2.0, **policy}
        self.policy = StatusListPolicy(**options)

    def config(self, **options: Any) -> Config:
        issuer = Issuer(self.issuer, algorithms=("ES256",), keys=StaticKeys(public_jwks(self.key)),
                        status_list=self.policy)
        rules = (Rule("/admin", scopes=("admin",)),)
        return Config(issuers=(issuer,), audience="api", clock=self.clock, rules=rules, **options)

    def publish(self, statuses: dict[int, int], *, bits: int = 1, signer: Key | None = None,
                **extra: Any) -> None:
        lst = encode_lst(statuses, bits, 1024)
        claims = list_claims(self.uri, lst, bits, now=self.clock(), ttl=TTL, **extra)
        self.server.serve(PATH, sign_list_token(signer or self.key, claims))

    def token(self, idx: int | None, **claims: Any) -> str:
        if idx is not None:
            claims["status"] = {"status_list": {"idx": idx, "uri": self.uri}}
        return mint(self.key, claims, issuer=self.issuer, now=self.clock(), lifetime=7200)

    def fetches(self) -> int:
        return self.server.count(PATH)


@pytest.fixture
def world(server: StatusListServer, key: Key, client_tls: ssl.SSLContext) -> World:
    return World(server, key, client_tls)


@pytest.fixture(params=FACES)
async def face_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


async def open_face(kind: str, world: World, **options: Any) -> Face:
    return Face(kind, Authenticator(world.config(**options)))


@pytest.fixture
async def face(face_kind: str, world: World) -> AsyncIterator[Face]:
    opened = await open_face(face_kind, world)
    yield opened
    await opened.close()


def is_cached(face: Face, token: str, world: World) -> bool:
    """The next request with ``token`` is a verified-cache hit (no signature check, no parse)."""
    ctx = face.auth._ctx
    return ctx.verified.get(f"Bearer {token}".encode(), world.clock(), face.auth.keys.generation) is not None


def assert_refused(answer: Answer, reason_text: str, token: str, world: World) -> None:
    """401 with the RFC 6750 challenge and the constant description; neither token nor uri echoed."""
    assert answer.status == 401, answer
    challenge = answer.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, challenge
    assert answer.body["error"] == "invalid_token"
    assert answer.body["error_description"] == reason_text
    shown = json.dumps(answer.headers) + json.dumps(answer.body)
    assert token.split(".")[1] not in shown and world.uri not in shown and PATH not in shown


REVOKED = "The access token has been revoked"
SUSPENDED = "The access token is suspended"
UNKNOWN = "The access token's status does not allow its use"
LIST_INVALID = "The access token's status list could not be verified"


# --- the list judges every request, verified-cache hits included ------------------------------
async def test_valid_then_revoked_when_the_list_flips_on_a_cache_hit(face: Face, world: World) -> None:
    world.publish({})
    token, other = world.token(5), world.token(6)
    for _ in range(2):  # the second is a verified-cache hit, judged by the cached list
        assert (await face.get(token)).status == 200
    assert (await face.get(other)).status == 200
    assert world.fetches() == 1
    world.publish({5: 1})  # the issuer revokes entry 5: the served list is replaced
    world.clock.advance(TTL + 1)  # the cached list is due
    assert is_cached(face, token, world)
    with audit_events() as events:
        refused = await face.get(token)
    assert_refused(refused, REVOKED, token, world)
    assert world.fetches() == 2
    assert [e["reason"] for e in events if e.get("outcome") == "deny"] == ["token_revoked"]
    assert (await face.get(other)).status == 200  # entry 6 is still VALID, from the same list
    assert_refused(await face.get(token), REVOKED, token, world)  # a cache hit, the list in memory
    assert world.fetches() == 2


async def test_suspended_and_unknown_statuses_are_refused(face: Face, world: World) -> None:
    world.publish({1: 2, 2: 3}, bits=2)
    suspended, unknown, valid = world.token(1), world.token(2), world.token(3)
    assert_refused(await face.get(suspended), SUSPENDED, suspended, world)
    assert_refused(await face.get(unknown), UNKNOWN, unknown, world)
    assert (await face.get(valid)).status == 200
    world.publish({1: 0, 3: 2}, bits=2)  # lifted, and a new suspension
    world.clock.advance(TTL + 1)
    assert is_cached(face, valid, world)
    assert (await face.get(suspended)).status == 200
    assert_refused(await face.get(valid), SUSPENDED, valid, world)


async def test_the_status_check_runs_before_scopes(face: Face, world: World) -> None:
    """A revoked token without the route's scope: 401 for the status, not 403 for the scope."""
    world.publish({7: 1})
    token = world.token(7)
    assert_refused(await face.get(token, "/admin"), REVOKED, token, world)


# --- an outage: the stale list, then 503 (or an audited pass under store_failure="open") ------
async def test_server_down_within_the_stale_window_then_past_it(face: Face, world: World) -> None:
    world.publish({9: 1})
    token, revoked = world.token(5), world.token(9)
    assert (await face.get(token)).status == 200
    world.server.stop()  # down: connections refused
    world.clock.advance(TTL + 1)  # due: the refetch fails, the stale list serves
    assert (await face.get(token)).status == 200
    assert_refused(await face.get(revoked), REVOKED, revoked, world)  # the stale list still refuses
    world.clock.advance(STALE)  # past fresh_until + stale_if_error
    with audit_events() as events:
        answer = await face.get(token)
        # within the failure backoff: refused at once by the cache, nothing fetched
        again = await face.get(token)
    for refused in (answer, again):
        assert refused.status == 503, refused
        assert 1 <= int(refused.headers["retry-after"]) <= world.policy.failure_backoff
        assert token.split(".")[1] not in json.dumps(refused.headers) + json.dumps(refused.body)
    assert [e["reason"] for e in events if e.get("outcome") == "deny"] == ["status_list_unavailable"] * 2


async def test_store_failure_open_passes_an_unavailable_list_and_audits_it(face_kind: str, world: World) -> None:
    face = await open_face(face_kind, world, store_failure="open")
    try:
        world.publish({})
        token = world.token(5)
        assert (await face.get(token)).status == 200
        world.server.stop()
        world.clock.advance(TTL + 1 + STALE)
        with audit_events() as events:
            assert (await face.get(token)).status == 200  # the refetch failed
            assert (await face.get(token)).status == 200  # within the backoff: no refetch
        allows = [e for e in events if e.get("outcome") == "allow"]
        assert [(e["reason"], e["level"]) for e in allows] == [("status_list_unavailable", "WARNING")] * 2
    finally:
        await face.close()


async def test_store_failure_open_never_passes_a_refused_list(face_kind: str, world: World) -> None:
    """Open covers a list that cannot be had, never one that came back and was refused."""
    face = await open_face(face_kind, world, store_failure="open")
    try:
        world.publish({}, signer=make_key("ES256", kid="issuer-1"))
        token = world.token(5)
        assert_refused(await face.get(token), LIST_INVALID, token, world)
    finally:
        await face.close()


async def test_a_stale_list_is_refetched_in_the_background(face: Face, world: World) -> None:
    """Once refetches fail, the stale list answers at once and one background refetch runs per
    backoff; the list it brings judges the next request."""
    world.publish({})
    token = world.token(5)
    assert (await face.get(token)).status == 200
    world.server.serve(PATH, b"down for maintenance", status=503)
    world.clock.advance(TTL + 1)
    assert (await face.get(token)).status == 200  # blocking refetch failed: the stale list
    assert world.fetches() == 2
    world.publish({5: 1})
    world.clock.advance(world.policy.failure_backoff + 1)
    assert (await face.get(token)).status == 200  # judged by the stale list; refetch started
    for _ in range(200):  # bounded: the background refetch lands
        if world.fetches() == 3 and (await face.get(token)).status == 401:
            break
        await asyncio.sleep(0.02)
    assert world.fetches() == 3
    assert_refused(await face.get(token), REVOKED, token, world)


# --- the list must be the issuer's own --------------------------------------------------------
@pytest.mark.parametrize("forgery", ["another-key-same-kid", "another-kid", "another-issuer", "another-sub"])
async def test_a_list_that_is_not_the_issuers_is_refused(face: Face, world: World, forgery: str) -> None:
    if forgery == "another-key-same-kid":
        world.publish({}, signer=make_key("ES256", kid="issuer-1"))
    elif forgery == "another-kid":
        world.publish({}, signer=make_key("ES256", kid="attacker"))
    elif forgery == "another-issuer":
        world.publish({}, iss="https://other.example")
    else:
        world.publish({}, sub=world.server.url + "/statuslists/2")
    token = world.token(5)
    with audit_events() as events:
        assert_refused(await face.get(token), LIST_INVALID, token, world)
    assert [e["reason"] for e in events if e.get("outcome") == "deny"] == ["status_list_invalid"]


async def test_an_index_past_the_list_is_refused(face: Face, world: World) -> None:
    world.publish({})  # 1024 entries
    token = world.token(4096)
    assert_refused(await face.get(token), "The access token's status index is out of range", token, world)


# --- single flight -----------------------------------------------------------------------------
async def test_concurrent_first_requests_cause_one_fetch(face: Face, world: World) -> None:
    world.publish({3: 1})
    world.server.routes[PATH].delay = 0.3  # every request arrives while the first fetch runs
    tokens = [world.token(i) for i in range(8)]
    answers = await asyncio.gather(*(face.get(t) for t in tokens))
    assert [a.status for a in answers] == [200, 200, 200, 401, 200, 200, 200, 200]
    assert world.fetches() == 1


# --- which issuers, which tokens ---------------------------------------------------------------
async def test_required_refuses_a_token_without_a_status_claim(face_kind: str, server: StatusListServer,
                                                               key: Key, client_tls: ssl.SSLContext) -> None:
    world = World(server, key, client_tls, required=True)
    face = await open_face(face_kind, world)
    try:
        world.publish({})
        bare = world.token(None)
        assert_refused(await face.get(bare), "The access token carries no status claim", bare, world)
        assert (await face.get(world.token(5))).status == 200
    finally:
        await face.close()


async def test_without_a_policy_the_status_claim_is_ignored(face_kind: str, world: World) -> None:
    """RFC 7519 §4: a claim not understood is ignored; nothing is fetched for such an issuer."""
    world.publish({5: 1})
    plain = Issuer(world.issuer, algorithms=("ES256",), keys=StaticKeys(public_jwks(world.key)))
    face = Face(face_kind, Authenticator(Config(issuers=(plain,), audience="api", clock=world.clock)))
    try:
        assert (await face.get(world.token(5))).status == 200
        assert world.fetches() == 0
    finally:
        await face.close()


async def test_a_policy_on_one_issuer_leaves_the_other_unchecked(face_kind: str, world: World) -> None:
    world.publish({5: 1})
    other_key = make_key("ES256", kid="other-1")
    plain = Issuer("https://other.example", algorithms=("ES256",), keys=StaticKeys(public_jwks(other_key)))
    config = world.config()
    face = Face(face_kind, Authenticator(Config(issuers=(*config.issuers, plain), audience="api",
                                                clock=world.clock)))
    try:
        claims = {"status": {"status_list": {"idx": 5, "uri": world.uri}}}
        elsewhere = mint(other_key, claims, issuer="https://other.example", now=world.clock(), lifetime=600)
        assert (await face.get(elsewhere)).status == 200
        assert world.fetches() == 0
        revoked = world.token(5)
        assert_refused(await face.get(revoked), REVOKED, revoked, world)
    finally:
        await face.close()


def test_config_mistakes_are_refused_at_construction(key: Key) -> None:
    keys = StaticKeys(public_jwks(key))
    with pytest.raises(ConfigError, match=r"Issuer\.status_list: a dict given; write status_list=StatusListPolicy"):
        Issuer("https://idp.example", algorithms=("ES256",), keys=keys, status_list={"ttl": 5})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="allowed_uri_prefixes"):
        Issuer("urn:example:idp", algorithms=("ES256",), keys=keys, status_list=StatusListPolicy())
    with pytest.raises(ConfigError, match=r"StatusListPolicy\.required"):
        StatusListPolicy(required="yes")  # type: ignore[arg-type]
    # with prefixes, an issuer identifier that is no URL is fine
    Issuer("urn:example:idp", algorithms=("ES256",), keys=keys,
           status_list=StatusListPolicy(allowed_uri_prefixes=("https://status.example/lists/",)))


def test_a_due_list_is_one_blocking_effect_even_on_a_cache_hit(world: World) -> None:
    """Stepping the sans-I/O flow: a cached token whose list is due yields FetchStatusList,
    and the flow judges the token by the list the driver's answer installed."""
    from jwt_middleware.core.effects import FetchStatusList
    from jwt_middleware.request import RequestView

    auth = Authenticator(world.config())
    world.publish({})
    token = world.token(5)
    view = RequestView("GET", "/me", [(b"authorization", f"Bearer {token}".encode())])
    assert auth.authenticate(view) is not None  # fetched, verified, cached
    world.publish({5: 1})
    world.clock.advance(TTL + 1)
    flow = auth.flow(view)
    effect = next(flow)
    assert effect == FetchStatusList(world.issuer, world.uri, blocking=True)
    assert auth._status_lists is not None
    auth._status_lists.answer(effect)
    with pytest.raises(InvalidToken) as refused:
        flow.send(None)
    assert refused.value.reason == "token_revoked"
    assert world.fetches() == 2


async def test_a_list_signed_by_a_key_the_cache_lacks_fetches_the_issuers_keys(
    face_kind: str, world: World, client_tls: ssl.SSLContext
) -> None:
    """The issuer rotated: its list is signed with a kid published after our keys were fetched.
    The list's kid miss refetches the issuer's JWKS (once per cooldown, as for tokens): the sync
    driver waits for it; the async one never waits on the event loop, so the list is unavailable
    (503) until the loader's next attempt, one failure_backoff later."""
    from jwt_middleware import JWKSUrl, KeyPolicy

    world.server.serve("/jwks", json.dumps(public_jwks(world.key)))
    issuer = Issuer(world.issuer, algorithms=("ES256",), keys=JWKSUrl(world.server.url + "/jwks"),
                    status_list=world.policy)
    config = Config(issuers=(issuer,), audience="api", clock=world.clock,
                    keys=KeyPolicy(tls=client_tls, fetch_timeout=2.0))
    face = Face(face_kind, Authenticator(config))
    try:
        assert (await face.get(world.token(None))).status == 200  # the issuer's keys: {issuer-1}
        rotated = make_key("ES256", kid="issuer-2")
        world.server.serve("/jwks", json.dumps(public_jwks(world.key, rotated)))
        world.publish({5: 1}, signer=rotated)
        valid, revoked = world.token(4), world.token(5)
        if face_kind == "asgi":
            answer = await face.get(valid)
            assert answer.status == 503 and answer.body["error"] == "temporarily_unavailable", answer
            for _ in range(100):  # bounded: the background key fetch lands
                if world.server.count("/jwks") == 2:
                    break
                await asyncio.sleep(0.02)
            world.clock.advance(world.policy.failure_backoff + 1)
        assert (await face.get(valid)).status == 200
        assert_refused(await face.get(revoked), REVOKED, revoked, world)
        assert world.server.count("/jwks") == 2
    finally:
        await face.close()
