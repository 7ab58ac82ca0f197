"""A nonce store must read the clock the pipeline computes ``until`` on (Config.clock)."""

from __future__ import annotations

import pytest

from jwt_middleware import Authenticator, Config, ConfigError, Issuer, Rule, StaticKeys
from jwt_middleware.stores import MemoryNonceStore
from jwt_middleware.testing import FakeClock, make_key, public_jwks


def _config(clock: FakeClock) -> Config:
    issuer = Issuer("https://issuer.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(make_key("ES256"))))
    return Config(issuers=(issuer,), audience="api", rules=(Rule("/once", one_time=True),), clock=clock)


def test_store_on_another_clock_than_the_config_is_refused_at_construction() -> None:
    clock = FakeClock()
    with pytest.raises(ConfigError, match=r"nonce_store: MemoryNonceStore reads another clock than Config\.clock"):
        Authenticator(_config(clock), nonce_store=MemoryNonceStore())  # time.time, not the FakeClock


def test_store_on_the_config_clock_is_accepted() -> None:
    clock = FakeClock()
    store = MemoryNonceStore(clock=clock)
    assert Authenticator(_config(clock), nonce_store=store).nonce_store is store
