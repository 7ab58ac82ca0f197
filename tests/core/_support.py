"""Helpers for the core suite: build an Authenticator, a RequestView, and read the decision."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, Refusal, RequestView, StaticKeys
from jwt_middleware.identity import Identity
from jwt_middleware.testing import FakeClock, public_jwks

ISSUER = "https://issuer.test"
NOW = 1_800_000_000.0
HeaderPairs = Sequence[tuple[str, str | bytes]]


def make_auth(
    key: Key | Sequence[Key],
    clock: FakeClock,
    *,
    algorithms: tuple[str, ...] = ("ES256",),
    issuer: str = ISSUER,
    issuer_options: dict[str, Any] | None = None,
    **config: Any,
) -> Authenticator:
    """One issuer trusting ``key`` (public part only), audience "api" unless overridden."""
    keys = [key] if isinstance(key, Key) else list(key)
    trusted = Issuer(issuer, algorithms=algorithms, keys=StaticKeys(public_jwks(*keys)), **(issuer_options or {}))
    config.setdefault("audience", "api")
    return Authenticator(Config(issuers=[trusted], clock=clock, **config))


def request(
    headers: HeaderPairs = (), *, path: str = "/resource", method: str = "GET", query: bytes = b""
) -> RequestView:
    raw = [(k.lower().encode("latin-1"), v if isinstance(v, bytes) else v.encode("latin-1")) for k, v in headers]
    return RequestView(method, path, raw, query_string=query, client_ip="127.0.0.1")


def bearer(token: str, scheme: str = "Bearer") -> list[tuple[str, str | bytes]]:
    return [("authorization", f"{scheme} {token}")]


def decide(auth: Authenticator, view: RequestView) -> Identity | None:
    """The synchronous decision; raises the Refusal."""
    return auth.authenticate(view)


@dataclass
class Rendered:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    refusal: Refusal

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name]

    @property
    def challenge(self) -> str:
        (value,) = self.values("www-authenticate")
        return value

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]

    @property
    def reason(self) -> str:
        return self.refusal.reason


def refuse(auth: Authenticator, view: RequestView) -> Rendered:
    """Assert the request is refused and return the rendered answer."""
    with pytest.raises(Refusal) as caught:
        auth.authenticate(view)
    status, headers, body = auth.render(caught.value)
    return Rendered(status, headers, body, caught.value)


def assert_invalid_token(rendered: Rendered) -> None:
    assert rendered.status == 401, rendered.reason
    assert rendered.challenge.startswith('Bearer realm="api", error="invalid_token"'), rendered.challenge
    assert rendered.json["error"] == "invalid_token"


def assert_invalid_request(rendered: Rendered) -> None:
    assert rendered.status == 400, rendered.reason
    assert rendered.challenge.startswith('Bearer realm="api", error="invalid_request"'), rendered.challenge
    assert rendered.json["error"] == "invalid_request"
