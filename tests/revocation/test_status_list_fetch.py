"""Status List Tokens fetched from a real HTTPS server on 127.0.0.1 (certificate from a test CA),
through StatusListLoader.check / acheck: the whole step for a verified token's claims.

The lists are signed by joserfc and compressed by Python's zlib in the test, never by our code.
Every bad answer from the server must leave the token refused (401 or 503), never a 500, and
nothing may be fetched from a place the issuer's allowlist does not name.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from joserfc.jwk import ECKey

from jwt_middleware.errors import InvalidToken, Refusal, Unavailable
from jwt_middleware.revocation.status_list import StatusListPolicy, StatusListRules, VerifyListToken
from jwt_middleware.revocation.status_list_cache import StatusListCache
from jwt_middleware.revocation.status_list_fetch import (
    StatusListFetchError,
    afetch_status_list_token,
    fetch_status_list_token,
)
from jwt_middleware.revocation.status_list_loader import StatusListLoader
from jwt_middleware.testing import FakeClock
from tests.revocation.test_status_list_support import (
    StatusListServer,
    b64url,
    encode_lst,
    free_port,
    joserfc_verifier,
    list_claims,
    sign_list_token,
    start_status_server,
)

NOW = 1_800_000_000.0
PATH = "/statuslists/1"


@pytest.fixture(scope="module")
def key() -> ECKey:
    return ECKey.generate_key("P-256", {"kid": "status-1"})


@pytest.fixture
def status_server(ca: trustme.CA) -> Iterator[StatusListServer]:
    server = start_status_server(ca)
    yield server
    server.stop()


class Harness:
    """One issuer (the server's origin), its rules, a cache, a loader and a fake clock."""

    def __init__(self, server: StatusListServer, key: ECKey, tls: ssl.SSLContext, **policy: Any) -> None:
        self.server = server
        self.key = key
        self.clock = FakeClock(NOW)
        options: dict[str, Any] = {"tls": tls, "fetch_timeout": 2.0, **policy}
        self.rules = StatusListRules.for_issuer(server.url, StatusListPolicy(**options))
        self.cache = StatusListCache(self.rules)
        self.verify: VerifyListToken = joserfc_verifier(key)
        self.loader = StatusListLoader(self.cache, self.verify, self.clock)
        self.uri = server.url + PATH

    def publish(self, statuses: dict[int, int], *, bits: int = 1, size: int = 1024, **extra: Any) -> str:
        claims = list_claims(self.uri, encode_lst(statuses, bits, size), bits, now=self.clock(), **extra)
        token = sign_list_token(self.key, claims)
        self.server.serve(PATH, token)
        return token

    def claims(self, idx: int, uri: str | None = None) -> dict[str, Any]:
        return {"iss": self.server.url, "status": {"status_list": {"idx": idx, "uri": uri or self.uri}}}

    def refusal(self, idx: int, uri: str | None = None) -> Refusal:
        with pytest.raises(Refusal) as caught:
            self.loader.check(self.claims(idx, uri))
        return caught.value

    async def arefusal(self, idx: int) -> Refusal:
        with pytest.raises(Refusal) as caught:
            await self.loader.acheck(self.claims(idx))
        return caught.value


@pytest.fixture
def harness(status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext) -> Harness:
    return Harness(status_server, key, client_tls)


# --- the list is had, verified and read ------------------------------------------------------
def test_sync_check_fetches_once_and_judges_each_token(harness: Harness) -> None:
    harness.publish({3: 1, 1023: 1})
    harness.loader.check(harness.claims(0))
    assert harness.refusal(3).reason == "token_revoked"
    harness.loader.check(harness.claims(4))
    assert harness.refusal(1023).reason == "token_revoked"
    assert harness.server.count(PATH) == 1
    sent = harness.server.request_headers[0]
    assert sent["accept"] == "application/statuslist+jwt"
    assert sent["accept-encoding"] == "gzip"


async def test_async_check_fetches_once_and_judges_each_token(harness: Harness) -> None:
    harness.publish({3: 1, 4: 2, 5: 3}, bits=2)
    await harness.loader.acheck(harness.claims(0))
    assert (await harness.arefusal(3)).reason == "token_revoked"
    assert (await harness.arefusal(4)).reason == "token_suspended"
    assert (await harness.arefusal(5)).reason == "token_status_unknown"
    assert harness.server.count(PATH) == 1


def test_token_without_status_claim_fetches_nothing(harness: Harness) -> None:
    harness.loader.check({"iss": harness.server.url, "sub": "u"})
    assert harness.server.hits == {}


def test_large_list_past_joserfcs_default_payload_cap(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    """2^23 entries with a quarter revoked: the list token is about 1.3 MB (draft §A, 10M row)."""
    harness = Harness(status_server, key, client_tls)
    rng = random.Random(12)
    size = 2**23
    revoked = dict.fromkeys(rng.sample(range(size), size // 4), 1)
    token = harness.publish(revoked, size=size)
    assert len(token) > 1_000_000  # joserfc's default registry would refuse it at 128 KB
    sample = rng.sample(range(size), 200)
    for idx in sample:
        if idx in revoked:
            assert harness.refusal(idx).reason == "token_revoked"
        else:
            harness.loader.check(harness.claims(idx))
    assert harness.server.count(PATH) == 1


def test_gzip_response_is_inflated(harness: Harness) -> None:
    token = harness.publish({9: 1})
    harness.server.serve(PATH, token, gzip=True)
    assert harness.refusal(9).reason == "token_revoked"


def test_same_origin_redirect_is_followed(harness: Harness) -> None:
    harness.publish({2: 1})
    token = harness.server.routes[PATH].body
    harness.server.serve("/moved/1", token)
    harness.server.serve(PATH, status=302, headers={"Location": "/moved/1"})
    assert harness.refusal(2).reason == "token_revoked"
    assert harness.server.count("/moved/1") == 1


def test_plain_http_on_loopback_is_fetched(key: ECKey) -> None:
    server = start_status_server(None)
    try:
        harness = Harness(server, key, ssl.create_default_context())
        harness.publish({1: 1})
        assert harness.refusal(1).reason == "token_revoked"
    finally:
        server.stop()


# --- bad answers and bad places: the token fails closed ---------------------------------------
def test_redirect_to_another_host_is_refused_and_never_followed(
    harness: Harness, ca: trustme.CA, key: ECKey
) -> None:
    elsewhere = start_status_server(ca)
    try:
        harness.publish({})
        elsewhere.serve(PATH, harness.server.routes[PATH].body)
        # "localhost" is another host than "127.0.0.1", though both reach this machine
        target = f"https://localhost:{elsewhere.port}{PATH}"
        harness.server.serve(PATH, status=302, headers={"Location": target})
        refusal = harness.refusal(0)
        assert isinstance(refusal, Unavailable) and refusal.reason == "status_list_unavailable"
        assert elsewhere.hits == {}
    finally:
        elsewhere.stop()


def test_redirect_outside_the_allowed_prefix_is_refused(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    harness = Harness(
        status_server, key, client_tls, allowed_uri_prefixes=(status_server.url + "/statuslists/",)
    )
    harness.publish({})
    status_server.serve("/admin/list", status_server.routes[PATH].body)
    status_server.serve(PATH, status=307, headers={"Location": "/admin/list"})
    assert harness.refusal(0).reason == "status_list_unavailable"
    assert status_server.count("/admin/list") == 0


def test_redirect_between_two_allowed_hosts_is_refused(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    """Same host only, even when the allowlist names both: a redirect may not change origin."""
    other_origin = f"https://localhost:{status_server.port}/"
    harness = Harness(
        status_server, key, client_tls, allowed_uri_prefixes=(status_server.url + "/", other_origin)
    )
    harness.publish({})
    status_server.serve("/moved", status_server.routes[PATH].body)
    status_server.serve(PATH, status=302, headers={"Location": other_origin + "moved"})
    assert harness.refusal(0).reason == "status_list_unavailable"
    assert status_server.count("/moved") == 0


def test_redirect_loop_stops(harness: Harness) -> None:
    harness.server.serve(PATH, status=302, headers={"Location": PATH})
    assert harness.refusal(0).reason == "status_list_unavailable"
    assert harness.server.count(PATH) == 4  # the first ask and three redirects


def test_uri_off_the_issuer_origin_is_never_fetched(harness: Harness) -> None:
    for uri in (
        f"http://127.0.0.1:{harness.server.port}{PATH}",
        f"https://localhost:{harness.server.port}{PATH}",
    ):
        refusal = harness.refusal(0, uri)
        assert refusal.reason == "status_uri_not_allowed" and refusal.status == 401
    assert harness.server.hits == {}


@pytest.mark.parametrize("fetch", ["sync", "async"])
def test_fetcher_itself_refuses_a_disallowed_uri(harness: Harness, fetch: str) -> None:
    uri = f"https://localhost:{harness.server.port}{PATH}"
    with pytest.raises(StatusListFetchError, match="not allowed"):
        if fetch == "sync":
            fetch_status_list_token(uri, harness.rules)
        else:
            asyncio.run(afetch_status_list_token(uri, harness.rules))
    assert harness.server.hits == {}


@pytest.mark.parametrize("length", [True, False], ids=["declared", "undeclared"])
def test_body_over_the_cap_is_refused(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext, length: bool
) -> None:
    harness = Harness(status_server, key, client_tls, max_compressed_bytes=64 * 1024, max_token_bytes=100_000)
    body = b64url(random.Random(3).randbytes(90_000)).encode()  # about 120 KB
    status_server.serve(PATH, body, length=length)
    assert harness.refusal(0).reason == "status_list_unavailable"


def test_gzip_bomb_body_is_refused_at_the_cap(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    harness = Harness(status_server, key, client_tls, max_compressed_bytes=64 * 1024, max_token_bytes=100_000)
    status_server.serve(PATH, b"A" * (64 * 1024 * 1024), gzip=True)  # 64 MiB inflating from ~64 KB
    started = time.monotonic()
    assert harness.refusal(0).reason == "status_list_unavailable"
    assert time.monotonic() - started < 10


def test_gzip_bomb_is_never_inflated_in_memory(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    """Each chunk inflates to at most the cap: 64 MiB never exist at once in this process."""
    harness = Harness(status_server, key, client_tls, max_compressed_bytes=64 * 1024, max_token_bytes=100_000)
    status_server.serve(PATH, b"A" * (64 * 1024 * 1024), gzip=True)
    tracemalloc.start()
    try:
        with pytest.raises(StatusListFetchError, match="size cap"):
            asyncio.run(afetch_status_list_token(harness.uri, harness.rules))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_list_decompressing_past_its_cap_fails_the_token(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    harness = Harness(status_server, key, client_tls, max_decompressed_bytes=1024)
    harness.publish({}, size=8 * 1025)
    refusal = harness.refusal(0)
    assert isinstance(refusal, InvalidToken) and refusal.reason == "status_list_invalid"


def test_list_with_trailing_zlib_data_fails_the_token(harness: Harness) -> None:
    lst = b64url(zlib.compress(bytes(16), 9) + b"\x00\x00")
    claims = list_claims(harness.uri, lst, 1, now=NOW)
    harness.server.serve(PATH, sign_list_token(harness.key, claims))
    assert harness.refusal(0).reason == "status_list_invalid"


def test_index_past_the_list_fails_the_token(harness: Harness) -> None:
    harness.publish({}, size=16)
    harness.loader.check(harness.claims(15))
    refusal = harness.refusal(16)
    assert refusal.reason == "status_index_out_of_range" and refusal.status == 401


def test_list_signed_by_another_key_fails_the_token(harness: Harness) -> None:
    intruder = ECKey.generate_key("P-256", {"kid": harness.key.kid})
    claims = list_claims(harness.uri, encode_lst({}, 1, 64), 1, now=NOW)
    harness.server.serve(PATH, sign_list_token(intruder, claims))
    refusal = harness.refusal(0)
    assert isinstance(refusal, InvalidToken) and refusal.reason == "status_list_invalid"


def test_list_of_another_issuer_fails_the_token(harness: Harness) -> None:
    harness.publish({}, iss="https://other-issuer.test")
    assert harness.refusal(0).reason == "status_list_invalid"


def test_list_for_another_uri_fails_the_token(harness: Harness) -> None:
    harness.publish({}, sub=harness.server.url + "/statuslists/2")
    assert harness.refusal(0).reason == "status_list_invalid"


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 404},
        {"status": 500},
        {"status": 204},
        {"body": b"\x00\xff\xfe"},  # not a JWS: a refused list
        {"body": b"<html>maintenance</html>"},
        {"body": b"x", "headers": {"Content-Encoding": "br"}},
    ],
    ids=["404", "500", "204", "binary", "html", "brotli"],
)
def test_bad_answers_fail_closed(harness: Harness, answer: dict[str, Any]) -> None:
    harness.server.serve(PATH, **answer)
    refusal = harness.refusal(0)
    assert refusal.reason in ("status_list_unavailable", "status_list_invalid")
    assert refusal.status in (401, 503)


def test_unreachable_server_is_503_with_retry_after(key: ECKey, client_tls: ssl.SSLContext) -> None:
    port = free_port()
    rules = StatusListRules.for_issuer(f"https://127.0.0.1:{port}", StatusListPolicy(tls=client_tls))
    loader = StatusListLoader(StatusListCache(rules), joserfc_verifier(key), FakeClock(NOW))
    claims = {"status": {"status_list": {"idx": 0, "uri": f"https://127.0.0.1:{port}{PATH}"}}}
    with pytest.raises(Unavailable) as caught:
        loader.check(claims)
    assert caught.value.retry_after == 5


def test_untrusted_certificate_is_unavailable(harness: Harness, key: ECKey) -> None:
    other_ca = trustme.CA()
    stranger = start_status_server(other_ca)
    try:
        other = Harness(stranger, key, harness.rules.policy.tls)
        other.publish({})
        assert other.refusal(0).reason == "status_list_unavailable"
    finally:
        stranger.stop()


@pytest.mark.parametrize("fetch", ["sync", "async"])
def test_drip_fed_answer_is_cut_at_the_fetch_timeout(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext, fetch: str
) -> None:
    harness = Harness(status_server, key, client_tls, fetch_timeout=0.5)
    status_server.serve(PATH, b"A" * 400, trickle=0.05)  # every gap is short, the whole is 20 s
    started = time.monotonic()
    with pytest.raises(StatusListFetchError, match="timed out"):
        if fetch == "sync":
            fetch_status_list_token(harness.uri, harness.rules)
        else:
            asyncio.run(afetch_status_list_token(harness.uri, harness.rules))
    assert time.monotonic() - started < 3


# --- caching, single flight, stale-if-error --------------------------------------------------
def test_concurrent_threads_fetch_once(harness: Harness) -> None:
    harness.publish({7: 1})
    harness.server.routes[PATH].delay = 0.5
    outcomes: list[str] = []

    def ask() -> None:
        try:
            harness.loader.check(harness.claims(7))
            outcomes.append("allowed")
        except Refusal as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == ["token_revoked"] * 8
    assert harness.server.count(PATH) == 1


async def test_concurrent_tasks_fetch_once(harness: Harness) -> None:
    harness.publish({7: 1})
    harness.server.routes[PATH].delay = 0.5
    results = await asyncio.gather(*(harness.arefusal(7) for _ in range(8)))
    assert [r.reason for r in results] == ["token_revoked"] * 8
    assert harness.server.count(PATH) == 1


def test_a_revocation_is_seen_once_the_list_is_due(harness: Harness) -> None:
    harness.publish({}, ttl=120)
    harness.loader.check(harness.claims(5))
    harness.publish({5: 1}, ttl=120)
    harness.clock.advance(119)
    harness.loader.check(harness.claims(5))  # still fresh: not refetched
    assert harness.server.count(PATH) == 1
    harness.clock.advance(1)
    assert harness.refusal(5).reason == "token_revoked"
    assert harness.server.count(PATH) == 2


def test_outage_serves_the_last_list_then_fails_closed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.publish({5: 1}, ttl=60)
    harness.loader.check(harness.claims(0))
    harness.server.serve(PATH, status=503)
    harness.clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="jwt_middleware.status_list"):
        harness.loader.check(harness.claims(0))  # stale list serves
    assert "unavailable" in caplog.text
    assert harness.refusal(5).reason == "token_revoked"  # and still revokes
    assert harness.server.count(PATH) == 2
    harness.clock.advance(4)
    harness.loader.check(harness.claims(0))
    assert harness.server.count(PATH) == 2  # backing off: the dead server is not asked again
    harness.clock.advance(300 - 4 - 1)  # to fresh_until + stale_if_error, then past it
    harness.loader.check(harness.claims(0))
    harness.clock.advance(1)
    refusal = harness.refusal(0)
    assert isinstance(refusal, Unavailable) and refusal.retry_after is not None


def test_while_stale_requests_do_not_wait_on_a_hanging_server(harness: Harness) -> None:
    harness.publish({}, ttl=60)
    harness.loader.check(harness.claims(0))
    harness.server.serve(PATH, status=503)
    harness.clock.advance(60)
    harness.loader.check(harness.claims(0))  # the refetch fails
    harness.publish({}, ttl=60)
    harness.server.routes[PATH].delay = 1.5
    harness.clock.advance(5)  # past the backoff: a background refetch, the request does not wait
    started = time.monotonic()
    harness.loader.check(harness.claims(0))
    assert time.monotonic() - started < 1.0
    deadline = time.monotonic() + 10
    while harness.cache.attempts(harness.uri) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert harness.cache.lookup(harness.uri, harness.clock())[1] is None  # fresh again


def test_a_bug_in_verify_fails_closed_and_is_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.publish({})

    def broken(compact: str) -> Any:
        raise KeyError("boom")

    loader = StatusListLoader(harness.cache, broken, harness.clock)
    with caplog.at_level(logging.ERROR, logger="jwt_middleware.status_list"):
        with pytest.raises(Unavailable):
            loader.check(harness.claims(0))
    assert "KeyError" in caplog.text and "boom" not in caplog.text


def test_a_list_judges_only_its_own_issuers_tokens(
    status_server: StatusListServer, key: ECKey, client_tls: ssl.SSLContext
) -> None:
    """Two realms of one server share an origin and may name the same uri; each issuer has its
    own cache, and realm B's tokens are never judged by realm A's list."""
    policy = StatusListPolicy(tls=client_tls)
    realm_a, realm_b = status_server.url + "/realms/a", status_server.url + "/realms/b"
    uri = status_server.url + PATH
    status_server.serve(
        PATH, sign_list_token(key, list_claims(uri, encode_lst({}, 1, 64), 1, now=NOW, iss=realm_a))
    )
    claims = {"status": {"status_list": {"idx": 0, "uri": uri}}}
    loader_a = StatusListLoader(
        StatusListCache(StatusListRules.for_issuer(realm_a, policy)), joserfc_verifier(key), FakeClock(NOW)
    )
    loader_a.check(claims)
    key_b = ECKey.generate_key("P-256", {"kid": key.kid})
    loader_b = StatusListLoader(
        StatusListCache(StatusListRules.for_issuer(realm_b, policy)), joserfc_verifier(key_b), FakeClock(NOW)
    )
    with pytest.raises(InvalidToken) as caught:
        loader_b.check(claims)
    assert caught.value.reason == "status_list_invalid"
    assert status_server.count(PATH) == 2
