"""The sans-I/O flow stepped by hand (effects in, answers out) and the identity it returns."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, cast

import pytest
from joserfc.jwk import Key

from jwt_middleware import (
    Authenticator,
    Config,
    InsufficientScope,
    Issuer,
    JWKSUrl,
    Rule,
    Unavailable,
)
from jwt_middleware._drive import drive_async, drive_sync
from jwt_middleware.core import pipeline
from jwt_middleware.core.effects import Effect, FetchKeys
from jwt_middleware.identity import Identity, identity_from_claims
from jwt_middleware.keys.cache import KeyCache, PinnedKey, pin_keys
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ._support import ISSUER, NOW, bearer, decide, make_auth, refuse, request


@pytest.fixture
def remote_auth(clock: FakeClock) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=JWKSUrl("https://issuer.test/jwks"))
    return Authenticator(Config(issuers=(issuer,), audience="api", clock=clock))


def test_static_keys_decide_without_any_effect(static_auth: Authenticator, es256_key: Key) -> None:
    flow = static_auth.flow(request(bearer(mint(es256_key, now=NOW))))
    with pytest.raises(StopIteration) as done:
        next(flow)
    assert done.value.value.subject == "user-1"


def test_cold_remote_issuer_yields_one_blocking_fetch(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    flow = remote_auth.flow(request(bearer(mint(es256_key, now=NOW))))
    assert next(flow) == FetchKeys(ISSUER, blocking=True)
    # the driver's answer lands in the key cache; the flow then finishes without asking again
    remote_auth.keys.store(ISSUER, pin_keys(public_jwks(es256_key), ("ES256",)), None, clock.now)
    with pytest.raises(StopIteration) as done:
        flow.send(None)
    assert done.value.value.issuer == ISSUER


def test_failed_fetch_answers_503_not_invalid_token(remote_auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    flow = remote_auth.flow(request(bearer(mint(es256_key, now=NOW))))
    next(flow)
    remote_auth.keys.record_failure(ISSUER, clock.now)
    with pytest.raises(Unavailable) as caught:
        flow.send(None)
    status, headers, _ = remote_auth.render(caught.value)
    assert status == 503
    assert ("retry-after", "5") in headers  # the loader's failure back-off
    assert not any(k == "www-authenticate" for k, _ in headers)


def test_verified_token_is_served_from_cache_without_effects(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, now=NOW)
    remote_auth.keys.store(ISSUER, pin_keys(public_jwks(es256_key), ("ES256",)), None, clock.now)
    assert decide(remote_auth, request(bearer(token))) is not None
    flow = remote_auth.flow(request(bearer(token)))
    with pytest.raises(StopIteration):
        next(flow)


def test_key_rotation_drops_cached_tokens_of_the_retired_key(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, now=NOW)
    remote_auth.keys.store(ISSUER, pin_keys(public_jwks(es256_key), ("ES256",)), None, clock.now)
    assert decide(remote_auth, request(bearer(token))) is not None
    successor = make_key("ES256", kid="es-2")
    remote_auth.keys.store(ISSUER, pin_keys(public_jwks(successor), ("ES256",)), None, clock.now)
    assert refuse(remote_auth, request(bearer(token))).reason == "unknown_kid"


# --- scopes and identity --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("claims", "scopes"),
    [({"scope": "read  write\tadmin"}, {"read", "write", "admin"}),
     ({"scp": ["read", "write"]}, {"read", "write"}),
     ({"scp": "read write"}, {"read", "write"}),
     ({"scope": "read", "scp": ["write"]}, {"read", "write"}),
     ({"scope": ""}, set()),
     ({}, set())],
)
def test_scope_and_scp_parsing(static_auth: Authenticator, es256_key: Key, claims: dict[str, object],
                               scopes: set[str]) -> None:
    identity = decide(static_auth, request(bearer(mint(es256_key, claims, now=NOW))))
    assert identity is not None and identity.scopes == frozenset(scopes)


def test_rejects_token_without_the_rules_scopes(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, rules=(Rule("/w", scopes=("read", "write")),))
    assert decide(auth, request(bearer(mint(es256_key, {"scope": "read write"}, now=NOW)), path="/w")) is not None
    rendered = refuse(auth, request(bearer(mint(es256_key, {"scope": "read"}, now=NOW)), path="/w"))
    assert isinstance(rendered.refusal, InsufficientScope)
    assert rendered.status == 403
    assert 'error="insufficient_scope"' in rendered.challenge and 'scope="read write"' in rendered.challenge


def test_scope_lookalikes_are_not_scopes(es256_key: Key, clock: FakeClock) -> None:
    """"read:all" or "readwrite" is not "read"; a scope in another claim counts for nothing."""
    auth = make_auth(es256_key, clock, rules=(Rule("/r", scopes=("read",)),))
    for claims in ({"scope": "read:all readwrite"}, {"roles": ["read"]}, {"scope": "READ"}, {"scopes": "read"}):
        assert refuse(auth, request(bearer(mint(es256_key, claims, now=NOW)), path="/r")).status == 403


def test_identity_is_a_read_only_view(static_auth: Authenticator, es256_key: Key) -> None:
    identity = decide(static_auth, request(bearer(mint(es256_key, {"jti": "j-1", "acr": "2"}, now=NOW))))
    assert identity is not None
    assert (identity.subject, identity.issuer, identity.token_id, identity.acr) == ("user-1", ISSUER, "j-1", "2")
    assert identity.expires_at == NOW + 300 and identity.issued_at == NOW
    with pytest.raises(TypeError):
        identity.claims["sub"] = "admin"  # type: ignore[index]


def test_identity_from_claims_ignores_ill_typed_optional_members() -> None:
    identity = identity_from_claims({"sub": "s", "amr": "pwd", "cnf": [], "scope": 1}, ISSUER)
    assert identity.amr == () and identity.binding is None and identity.scopes == frozenset()


# --- an internal bug is a 503, never a 500 and never an accept --------------------------------------------
def test_internal_error_answers_503_and_never_leaks(
    static_auth: Authenticator, es256_key: Key, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint(es256_key, {"sub": "MARKER-7f3a"}, now=NOW)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(pipeline, "check_claims", broken)
    with caplog.at_level(logging.DEBUG, logger="jwt_middleware"):
        rendered = refuse(static_auth, request(bearer(token)))
    assert isinstance(rendered.refusal, Unavailable)
    assert rendered.status == 503 and rendered.reason == "internal_error"
    assert rendered.json == {"error": "temporarily_unavailable",
                             "error_description": "Authentication is temporarily unavailable"}
    assert "RuntimeError" in caplog.text
    for secret in (token, token.split(".")[1], "MARKER-7f3a"):
        assert secret not in caplog.text
        assert secret.encode() not in rendered.body


def test_trace_records_the_token_issuer_and_identity(static_auth: Authenticator, es256_key: Key) -> None:
    token = mint(es256_key, now=NOW)
    trace = pipeline.Trace()
    flow = static_auth.flow(request(bearer(token)), trace)
    with pytest.raises(StopIteration):
        next(flow)
    assert trace.token == token and trace.issuer == ISSUER
    assert trace.identity is not None and trace.identity.subject == "user-1"


# --- the rotation race: a key a concurrent refresh removes while its token is being verified ------------
Driver = Literal["step", "sync", "async"]
DRIVERS: tuple[Driver, ...] = ("step", "sync", "async")


async def run(flow: pipeline.Flow, answer: Callable[[Effect], object], driver: Driver) -> Identity | None:
    """Run ``flow`` by hand (sans-I/O stepping) or with the real sync or async driver."""
    if driver == "sync":
        return cast("Identity | None", drive_sync(flow, answer))
    if driver == "async":

        async def answer_async(effect: Effect) -> object:
            return answer(effect)

        return cast("Identity | None", await drive_async(flow, answer_async))
    try:
        effect = next(flow)
        while True:
            effect = flow.send(answer(effect))
    except StopIteration as done:
        return cast("Identity | None", done.value)


def pinned(key: Key) -> list[PinnedKey]:
    return pin_keys(public_jwks(key), ("ES256",))


@pytest.mark.parametrize("driver", DRIVERS)
async def test_token_verified_while_a_refresh_retires_its_key_is_not_cached_as_current(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock, driver: Driver
) -> None:
    """The background refresh a request asks for ends (a WSGI thread wins the race) before the
    flow resumes and verifies with the key it already looked up: that key is now retired."""
    keys = remote_auth.keys
    keys.store(ISSUER, pinned(es256_key), None, clock.now)
    clock.advance(600 - 30 + 1)  # default_ttl 600, refresh_ahead 30: the next request asks for a refresh
    token = mint(es256_key, now=clock.now)
    successor = make_key("ES256", kid="es-2")
    effects: list[Effect] = []

    def refresh_lands(effect: Effect) -> None:
        effects.append(effect)
        keys.store(ISSUER, pinned(successor), None, clock.now)  # es256_key is retired

    in_flight = await run(remote_auth.flow(request(bearer(token))), refresh_lands, driver)
    assert effects == [FetchKeys(ISSUER, blocking=False)]
    assert in_flight is not None  # it was looked up before the rotation: this one answer may pass
    assert refuse(remote_auth, request(bearer(token))).reason == "unknown_kid"  # but it is not cached


@pytest.mark.parametrize("driver", DRIVERS)
async def test_token_verified_just_before_a_refresh_lands_is_not_cached_as_current(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock, driver: Driver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cold fetch installs the key; another request's refresh retires it right after this flow
    looked it up (a thread switch between the lookup and the cache write)."""
    keys = remote_auth.keys
    token = mint(es256_key, now=clock.now)
    successor = make_key("ES256", kid="es-2")
    lookup = keys.select_after_fetch

    def lookup_then_refresh_lands(issuer: str, kid: str | None, alg: str, now: float) -> PinnedKey:
        key = lookup(issuer, kid, alg, now)
        keys.store(ISSUER, pinned(successor), None, clock.now)
        return key

    monkeypatch.setattr(keys, "select_after_fetch", lookup_then_refresh_lands)

    def fetch(effect: Effect) -> None:
        assert effect == FetchKeys(ISSUER, blocking=True)
        keys.store(ISSUER, pinned(es256_key), None, clock.now)

    assert await run(remote_auth.flow(request(bearer(token))), fetch, driver) is not None
    monkeypatch.undo()
    assert refuse(remote_auth, request(bearer(token))).reason == "unknown_kid"


def test_token_verified_without_effects_just_before_a_refresh_lands_is_not_cached_as_current(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The effect-free path (prepare with a fresh set): the same race between lookup and cache write."""
    keys = remote_auth.keys
    keys.store(ISSUER, pinned(es256_key), None, clock.now)
    token = mint(es256_key, now=clock.now)
    lookup = keys.ready

    def lookup_then_refresh_lands(issuer: str, kid: str | None, alg: str, now: float) -> PinnedKey | None:
        key = lookup(issuer, kid, alg, now)
        keys.store(ISSUER, pinned(make_key("ES256", kid="es-2")), None, clock.now)
        return key

    monkeypatch.setattr(keys, "ready", lookup_then_refresh_lands)
    assert decide(remote_auth, request(bearer(token))) is not None
    monkeypatch.undo()
    assert refuse(remote_auth, request(bearer(token))).reason == "unknown_kid"


class _SwitchAfterBump(KeyCache):
    """A KeyCache whose store lets another request run right after the generation changes
    (a thread switch at the worst moment), once."""

    on_bump: Callable[[], object] | None = None
    _generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    @generation.setter
    def generation(self, value: int) -> None:
        self._generation = value
        hook, self.on_bump = self.on_bump, None
        if hook is not None:
            hook()


def test_request_running_while_a_refresh_installs_a_new_set_never_caches_the_retired_key(
    remote_auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    """KeyCache.store must install the keys before it changes the generation: a reader that sees
    the new generation must also see the new keys, or a retired key's token is cached as current."""
    keys = remote_auth.keys
    keys.store(ISSUER, pinned(es256_key), None, clock.now)
    keys.__class__ = _SwitchAfterBump
    assert isinstance(keys, _SwitchAfterBump)
    keys._generation = keys.__dict__.pop("generation")
    token = mint(es256_key, now=clock.now)
    keys.on_bump = lambda: remote_auth.begin(request(bearer(token)))  # answered without effects, or refused
    keys.store(ISSUER, pinned(make_key("ES256", kid="es-2")), None, clock.now)
    assert keys.on_bump is None  # the other request did run in between
    assert refuse(remote_auth, request(bearer(token))).reason == "unknown_kid"
