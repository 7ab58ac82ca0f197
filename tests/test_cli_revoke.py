"""``jwt-middleware revoke``: each revocation reaches another worker's mirror through a real Redis.

The command runs as a real subprocess (``python -m jwt_middleware.cli``) or in-process through
``main(argv)``; the "worker" is a RedisRevocationStore whose follower thread was started before
the command ran, so what it learns it learns from the command's PUBLISH (its heartbeat is set
far longer than the wait). Usage mistakes and an unreachable or stalled Redis end with one
line on stderr and exit 2 or 1, never a traceback.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode
from redis.retry import Retry

from jwt_middleware.revocation import (
    CLIENT_REVOKED,
    SESSION_REVOKED,
    SUBJECT_REVOKED,
    TOKEN_REVOKED,
    RedisRevocationStore,
    RevokedToken,
)
from jwt_middleware.testing import make_key, mint

from .support.cli_runner import Cli
from .support.cli_runner import cli as cli  # fixtures: ``x as x`` so pytest finds them here
from .support.cli_runner import inproc as inproc
from .support.redis_cluster import LocalRedisCluster
from .support.redis_server import RedisServer, free_port

ISSUER = "https://issuer.test"
#: The follower's heartbeat: longer than any wait below, so only the command's PUBLISH can
#: explain a change seen in time (the follower resyncs in full only at start and every 60 s).
SLOW_HEARTBEAT = 5.0
#: Generous bound for "the worker learned it" (seconds): against a hang, not a benchmark.
EVENTUALLY = 3.0


def unique_prefix() -> str:
    return "{jwtmw-cli:" + uuid.uuid4().hex + "}"


def short_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    """The session's redis-server; each test writes under a prefix of its own."""
    return redis_server


@pytest.fixture
def lone_server() -> Iterator[RedisServer]:
    """A redis-server for one test that stalls it or sets a password on it."""
    server = RedisServer().start()
    yield server
    server.remove()


@pytest.fixture
def prefix() -> str:
    return unique_prefix()


@pytest.fixture
def worker(server: RedisServer, prefix: str) -> Iterator[RedisRevocationStore]:
    """Another worker: a store following the same Redis and prefix, started before the command."""
    client = short_client(server.url)
    store = RedisRevocationStore(client, prefix, heartbeat=SLOW_HEARTBEAT, max_staleness=SLOW_HEARTBEAT + 5)
    store.start()
    assert store.mirror.trusted(time.time())
    yield store
    store.close()
    client.close()


def learns(store: RedisRevocationStore, check: Callable[[], bool], within: float = EVENTUALLY) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


def refused(
    store: RedisRevocationStore, *, jti: str | None = None, subject: str | None = None,
    sid: str | None = None, client_id: str | None = None, iat: float | None = None,
) -> str | None:
    return store.mirror.check(ISSUER, jti, subject, sid, client_id, iat, time.time())


def seq(server: RedisServer, prefix: str) -> int:
    client = short_client(server.url)
    try:
        return int(client.get(f"{prefix}:seq") or 0)
    finally:
        client.close()


# --- each kind reaches a running worker ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "option", "claim", "reason"),
    [
        ("subject", "--subject", "subject", SUBJECT_REVOKED),
        ("session", "--sid", "sid", SESSION_REVOKED),
        ("client", "--client-id", "client_id", CLIENT_REVOKED),
    ],
)
def test_a_cut_off_reaches_a_running_workers_mirror(
    cli: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore,
    kind: str, option: str, claim: str, reason: str,
) -> None:
    issued = time.time() - 60
    assert refused(worker, **{claim: "alice"}, iat=issued) is None
    before = time.time()
    result = cli("revoke", kind, "--issuer", ISSUER, option, "alice",
                 "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 0, result.err
    [line] = result.lines
    assert line["revoked"] == kind and line["issuer"] == ISSUER and line[claim] == "alice"
    assert before <= line["at"] <= time.time()  # --at defaults to now
    assert learns(worker, lambda: refused(worker, **{claim: "alice"}, iat=issued) == reason)
    assert refused(worker, **{claim: "bob"}, iat=issued) is None  # only the named value
    assert refused(worker, **{claim: "alice"}, iat=line["at"] + 1) is None  # issued after the cut-off
    assert seq(server, prefix) == 1  # the store's Lua script: merge, INCR seq, PUBLISH


def test_a_token_revocation_reaches_a_running_worker_until_its_time(
    cli: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore
) -> None:
    until = time.time() + 600
    result = cli("revoke", "token", "--issuer", ISSUER, "--jti", "jti-1", "--jti", "jti-2",
                 "--until", repr(until), "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 0, result.err
    assert result.lines == [
        {"revoked": "token", "issuer": ISSUER, "jti": jti, "until": until} for jti in ("jti-1", "jti-2")
    ]
    assert learns(worker, lambda: refused(worker, jti="jti-2") == TOKEN_REVOKED)
    assert refused(worker, jti="jti-1") == TOKEN_REVOKED
    assert RevokedToken(ISSUER, "jti-1", until) in worker.mirror.entries(time.time())  # exact time kept
    assert refused(worker, jti="jti-3") is None


def test_repeated_values_give_one_line_each_and_all_hold(
    inproc: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore
) -> None:
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a", "--subject", "b",
                    "--at", "1000", "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 0, result.err
    assert [(line["subject"], line["at"]) for line in result.lines] == [("a", 1000.0), ("b", 1000.0)]
    assert learns(worker, lambda: refused(worker, subject="b", iat=999) == SUBJECT_REVOKED)
    assert refused(worker, subject="a", iat=1000) == SUBJECT_REVOKED
    assert refused(worker, subject="a", iat=1001) is None


def test_the_redis_url_comes_from_the_environment(
    cli: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_MIDDLEWARE_REDIS_URL", server.url)  # a subprocess inherits it
    result = cli("revoke", "client", "--issuer", ISSUER, "--client-id", "app", "--prefix", prefix)
    assert result.code == 0, result.err
    assert learns(worker, lambda: refused(worker, client_id="app", iat=time.time() - 5) == CLIENT_REVOKED)


def test_another_prefix_is_another_apps_state(
    inproc: Cli, server: RedisServer, worker: RedisRevocationStore
) -> None:
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "alice",
                    "--redis-url", server.url, "--prefix", unique_prefix())
    assert result.code == 0
    time.sleep(0.3)  # long enough for a PUBLISH on the worker's channel to arrive
    assert refused(worker, subject="alice", iat=0) is None


# --- --token: iss, jti and exp read from the token -------------------------------------------------


def test_token_option_keeps_the_entry_until_exp_plus_leeway(
    cli: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore
) -> None:
    token = mint(make_key("ES256"), {"jti": "stolen-1"}, issuer=ISSUER, lifetime=120)
    exp = json_claims(token)["exp"]
    result = cli("revoke", "token", "--token", token, "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 0, result.err
    assert result.lines == [{"revoked": "token", "issuer": ISSUER, "jti": "stolen-1", "until": exp + 30.0}]
    assert token not in result.out + result.err  # never echoed
    assert learns(worker, lambda: RevokedToken(ISSUER, "stolen-1", exp + 30.0) in worker.mirror.entries(exp))


def test_token_from_stdin_with_its_own_leeway(
    inproc: Cli, server: RedisServer, prefix: str, worker: RedisRevocationStore
) -> None:
    token = mint(make_key("ES256"), {"jti": "stolen-2"}, issuer=ISSUER)
    exp = json_claims(token)["exp"]
    result = inproc("revoke", "token", "--token", "-", "--leeway", "0", "--issuer", ISSUER, "--jti", "stolen-2",
                    "--redis-url", server.url, "--prefix", prefix, stdin=token.encode() + b"\n")
    assert result.code == 0, result.err
    assert result.lines[0]["until"] == exp
    assert learns(worker, lambda: refused(worker, jti="stolen-2") == TOKEN_REVOKED)


@pytest.mark.parametrize(
    ("claims", "extra", "message"),
    [
        ({"jti": "j"}, ["--jti", "other"], "--jti: differs from the token's jti"),
        ({"jti": "j"}, ["--issuer", "https://other.test"], "--issuer: differs from the token's iss"),
        ({"jti": None}, [], "--jti: the token has no jti"),
        ({"jti": "j", "exp": None}, [], "--token: it has no numeric exp"),
        ({"jti": "j", "exp": "soon"}, [], "--token: it has no numeric exp"),
        ({"jti": "j", "exp": 1000}, [], "--token: its exp plus --leeway: that time has passed"),
        ({"jti": "j"}, ["--jti", "j", "--jti", "k"], "--jti: give at most one with --token"),
    ],
)
def test_token_option_mistakes_are_usage_errors_and_write_nothing(
    inproc: Cli, server: RedisServer, prefix: str, claims: dict[str, Any], extra: list[str], message: str
) -> None:
    token = mint(make_key("ES256"), claims, issuer=ISSUER)
    result = inproc("revoke", "token", "--token", token, *extra, "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err
    assert token not in result.err
    assert seq(server, prefix) == 0


def test_a_token_that_is_not_a_jws_is_a_usage_error(inproc: Cli, server: RedisServer) -> None:
    result = inproc("revoke", "token", "--token", "a.b", "--redis-url", server.url)
    assert result.code == 2 and "--token: not a signed JWT" in result.err


# --- usage mistakes: exit 2, one line, nothing written ---------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["subject", "--issuer", ISSUER, "--subject", "a", "--at", str(time.time() + 3600)],
         "s ahead of this host's clock"),
        (["subject", "--issuer", ISSUER, "--subject", "a", "--at", "1700000000000"], "not milliseconds"),
        (["subject", "--issuer", ISSUER, "--subject", "a", "--at", "nan"], "not a finite number"),
        (["subject", "--issuer", ISSUER, "--subject", ""], "--subject: must not be empty"),
        (["session", "--issuer", "", "--sid", "s"], "--issuer: must not be empty"),
        (["token", "--issuer", ISSUER, "--jti", "j", "--until", "1000"], "--until: that time has passed"),
        (["token", "--issuer", ISSUER, "--until", str(time.time() + 60)], "--jti: give the jti"),
        (["token", "--jti", "j", "--until", str(time.time() + 60)], "--issuer: must not be empty"),
        (["token", "--issuer", ISSUER, "--jti", "j"], "one of the arguments --until --token is required"),
        (["client", "--issuer", ISSUER, "--client-id", "c", "--timeout", "0"], "--timeout"),
        (["client", "--issuer", ISSUER, "--client-id", "c", "--timeout", "31"], "--timeout"),
    ],
)
def test_usage_mistakes_exit_2_before_anything_is_written(
    inproc: Cli, server: RedisServer, prefix: str, argv: list[str], message: str
) -> None:
    result = inproc("revoke", *argv, "--redis-url", server.url, "--prefix", prefix)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err
    assert result.out == ""
    assert seq(server, prefix) == 0


def test_a_prefix_without_a_hash_tag_is_refused_naming_the_fix(inproc: Cli, server: RedisServer) -> None:
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a",
                    "--redis-url", server.url, "--prefix", "no-tag")
    assert result.code == 2 and "prefix" in result.err and "{hash tag}" in result.err


def test_no_redis_url_names_the_option_and_the_variable(inproc: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_MIDDLEWARE_REDIS_URL", raising=False)
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a")
    assert result.code == 2
    assert "--redis-url" in result.err and "JWT_MIDDLEWARE_REDIS_URL" in result.err


def test_not_a_redis_url_is_a_usage_error(inproc: Cli) -> None:
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a", "--redis-url", "http://x:1/")
    assert result.code == 2 and "--redis-url: not a Redis URL" in result.err


def test_the_bare_group_prints_usage(inproc: Cli) -> None:
    result = inproc("revoke")
    assert result.code == 2 and "usage: jwt-middleware revoke" in result.err


# --- passwords: never on the command line, never echoed --------------------------------------------


def test_a_password_goes_in_the_environment_and_is_never_echoed(
    cli: Cli, lone_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = short_client(lone_server.url)
    client.config_set("requirepass", "s3cret-MARKER")
    client.close()
    url = f"redis://:s3cret-MARKER@127.0.0.1:{lone_server.port}/0"
    argv = ["revoke", "subject", "--issuer", ISSUER, "--subject", "alice"]
    on_command_line = cli(*argv, "--redis-url", url)
    assert on_command_line.code == 2
    assert "JWT_MIDDLEWARE_REDIS_URL" in on_command_line.err and "MARKER" not in on_command_line.err

    monkeypatch.setenv("JWT_MIDDLEWARE_REDIS_URL", url)
    accepted = cli(*argv)
    assert accepted.code == 0, accepted.err
    reader = redis.Redis.from_url(url, socket_timeout=0.5)
    assert reader.hlen("{jwt_middleware:revocation}:cutoffs") == 1  # the default prefix
    reader.close()

    monkeypatch.setenv("JWT_MIDDLEWARE_REDIS_URL", url.replace("s3cret", "wrong"))
    wrong = cli(*argv)
    assert wrong.code == 1
    assert "Traceback" not in wrong.err and "MARKER" not in wrong.err + wrong.out
    assert len(wrong.err.strip().splitlines()) == 1


# --- Redis unreachable or stalled: exit 1, one line, within the timeout ----------------------------


def test_unreachable_redis_exits_1_with_one_line(cli: Cli) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = cli("revoke", "subject", "--issuer", ISSUER, "--subject", "a", "--redis-url", url)
    assert result.code == 1
    assert result.out == ""
    [line] = result.err.strip().splitlines()
    assert line.startswith("jwt-middleware: error: Redis at redis://127.0.0.1:") and "Connection" in line


def test_a_stalled_redis_exits_1_within_the_timeout(inproc: Cli, lone_server: RedisServer) -> None:
    with lone_server.stalled():
        started = time.monotonic()
        result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a",
                        "--redis-url", lone_server.url, "--timeout", "0.4")
        elapsed = time.monotonic() - started
    assert result.code == 1 and "Timeout" in result.err and "Traceback" not in result.err
    assert elapsed < 0.4 + 0.3


# --- Redis Cluster ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    nodes = LocalRedisCluster(masters=3).start()
    yield nodes
    nodes.remove()


@pytest.mark.timeout(120)
def test_cluster_revocation_reaches_a_worker_on_the_cluster(cli: Cli, cluster: LocalRedisCluster) -> None:
    prefix = unique_prefix()
    nodes = [ClusterNode(*node) for node in cluster.startup_nodes]  # type: ignore[no-untyped-call]
    client = redis.RedisCluster(startup_nodes=nodes,
                                socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    store = RedisRevocationStore(client, prefix, heartbeat=SLOW_HEARTBEAT, max_staleness=SLOW_HEARTBEAT + 5)
    store.start()
    try:
        result = cli("revoke", "session", "--issuer", ISSUER, "--sid", "sid-1",
                     "--redis-url", cluster.url, "--cluster", "--prefix", prefix)
        assert result.code == 0, result.err
        assert learns(store, lambda: refused(store, sid="sid-1", iat=0) == SESSION_REVOKED)
    finally:
        store.close()
        client.close()


def test_cluster_option_against_a_plain_redis_exits_1(inproc: Cli, server: RedisServer) -> None:
    result = inproc("revoke", "session", "--issuer", ISSUER, "--sid", "s",
                    "--redis-url", server.url, "--cluster")
    assert result.code == 1
    assert "Redis Cluster" in result.err and "Traceback" not in result.err


def json_claims(token: str) -> dict[str, Any]:
    import base64

    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_without_the_redis_extra_it_names_the_extra(inproc: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as in an install without the redis extra,
    monkeypatch.delitem(sys.modules, "jwt_middleware.revocation.redis", raising=False)  # never imported there
    result = inproc("revoke", "subject", "--issuer", ISSUER, "--subject", "a", "--redis-url", "redis://127.0.0.1:1")
    assert result.code == 2 and "asgi-wsgi-jwt-guard[redis]" in result.err
