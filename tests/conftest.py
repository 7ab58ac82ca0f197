"""Shared fixtures: a fake clock, keys, a real HTTPS issuer on 127.0.0.1, a real redis-server;
and the same logging setup for every test, whatever ran before it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, KeyPolicy, StaticKeys
from jwt_middleware.testing import FakeClock, make_key, public_jwks

from .support.jwks_server import JWKSServer
from .support.logging_state import LoggingBaseline
from .support.redis_server import RedisServer

ISSUER = "https://issuer.test"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say which random order ran, even under -q (pytest-randomly's own line is in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"random order: replay with -p randomly --randomly-seed={seed}")


@pytest.fixture(scope="session", autouse=True)
def logging_baseline() -> LoggingBaseline:
    """Logging as collection left it: the same whatever order the tests then run in."""
    return LoggingBaseline()


@pytest.fixture(autouse=True)
def isolated_logging(logging_baseline: LoggingBaseline) -> Iterator[None]:
    """Each test starts and ends with the baseline: a framework's logging setup does not leak."""
    logging_baseline.restore()
    yield
    logging_baseline.restore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture(scope="session")
def es256_key() -> Key:
    return make_key("ES256", kid="es-1")


@pytest.fixture
def static_auth(es256_key: Key, clock: FakeClock) -> Authenticator:
    """An Authenticator trusting one ES256 key given in code."""
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    return Authenticator(Config(issuers=(issuer,), audience="api", clock=clock))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """What the middleware trusts: only our test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def jwks_server(ca: trustme.CA) -> Iterator[JWKSServer]:
    """A real HTTPS issuer on 127.0.0.1 with a certificate from the test CA."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    server = JWKSServer(server_tls).start()
    yield server
    server.stop()


@pytest.fixture
def key_policy(client_tls: ssl.SSLContext) -> KeyPolicy:
    return KeyPolicy(tls=client_tls, fetch_timeout=2.0)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.remove()
