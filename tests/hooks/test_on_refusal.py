"""Config.on_refusal: one place that shapes the body of every refusal, sync or async, under ASGI
and WSGI; the challenge, Retry-After, DPoP-Nonce and Cache-Control stay ours."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from jwt_middleware import Authenticator, ConfigError
from jwt_middleware.challenge import with_body
from jwt_middleware.errors import InsufficientScope, MissingToken, Refusal, UseDPoPNonce
from jwt_middleware.hooks import RefusalBody
from jwt_middleware.request import RequestView
from jwt_middleware.testing import FakeClock

from ._support import (
    DRIVERS,
    MODES,
    Calls,
    Driver,
    Mode,
    bearer,
    body,
    challenges,
    client,
    config,
    in_mode,
    problem_shaper,
    token,
)

DEFAULT_403 = ('Bearer realm="api", error="insufficient_scope", '
               'error_description="The access token lacks a required scope", scope="admin"')



@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_the_hook_shapes_the_body_of_every_middleware_refusal(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, on_refusal=problem_shaper(mode, calls)))
    with client(driver, auth) as http:
        missing = http.get("/me")
        scope = http.get("/admin", headers=bearer(token(clock, scope="read")))
        bad = http.get("/me", headers=bearer("e30.e30.sig"))
    assert body(missing) == {"type": "about:blank", "status": 401, "code": "unauthorized", "path": "/me"}
    assert challenges(missing) == ['Bearer realm="api"']
    assert body(scope) == {"type": "about:blank", "status": 403, "code": "insufficient_scope", "path": "/admin"}
    assert challenges(scope) == [DEFAULT_403]  # the challenge is ours, whatever the body says
    assert scope.headers["content-type"] == "application/json"
    assert scope.headers["content-length"] == str(len(scope.content))
    assert scope.headers["cache-control"] == "no-store"
    assert bad.status_code == 401 and body(bad)["code"] == "invalid_token"
    refusals = [refusal for refusal, _ in calls.seen]
    assert [type(r) for r in refusals][:2] == [MissingToken, InsufficientScope]
    assert all(isinstance(request, RequestView) for _, request in calls.seen)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_refusal_body_sets_type_and_extra_headers_but_never_the_challenge(
    driver: Driver, mode: Mode, clock: FakeClock
) -> None:
    def shape(refusal: Refusal, request: RequestView | None) -> RefusalBody:
        refusal.params["scope"] = "everything"  # changing the refusal reaches nothing already rendered
        refusal.headers["WWW-Authenticate"] = "Basic"
        return RefusalBody(b"<p>no</p>", content_type="text/html; charset=utf-8",
                           headers={"Link": '</help>; rel="help"', "X-Request-Id": "r1"})

    auth = Authenticator(config(clock, on_refusal=in_mode(mode, shape)))
    with client(driver, auth) as http:
        response = http.get("/admin", headers=bearer(token(clock, scope="read")))
    assert (response.status_code, response.content) == (403, b"<p>no</p>")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["link"] == '</help>; rel="help"' and response.headers["x-request-id"] == "r1"
    assert challenges(response) == [DEFAULT_403]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_none_keeps_the_default_body(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    plain = Authenticator(config(clock))
    hooked = Authenticator(config(clock, on_refusal=in_mode(mode, lambda refusal, request: None)))
    with client(driver, plain) as a, client(driver, hooked) as b:
        reference = a.get("/admin", headers=bearer(token(clock, scope="read")))
        shaped = b.get("/admin", headers=bearer(token(clock, scope="read")))
    assert shaped.content == reference.content and shaped.headers == reference.headers


@pytest.mark.parametrize("name", ["WWW-Authenticate", "retry-after", "DPoP-Nonce", "Cache-Control",
                                  "Content-Length", "content-type"])
def test_a_refusal_body_cannot_name_a_header_of_ours(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name!r} cannot be set by on_refusal"):
        RefusalBody({"error": "x"}, headers={name: "v"})


@pytest.mark.parametrize("headers", [{"X-A": "one\r\nSet-Cookie: s=1"}, {"X-A": "nul\x00"}, {"X A": "v"},
                                     {"X-A": "\u2603"}])
def test_a_refusal_body_refuses_header_injection(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"RefusalBody\.headers"):
        RefusalBody({"error": "x"}, headers=headers)


def test_a_refusal_body_is_json_or_bytes_and_stays_as_built() -> None:
    with pytest.raises(ValueError, match="not JSON-able"):
        RefusalBody({"when": object()})
    with pytest.raises(ValueError, match="give a mapping or bytes"):
        RefusalBody("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is not a media type"):
        RefusalBody(b"x", content_type="text/html\r\nX: y")
    built = RefusalBody({"b": 1, "a": [1, 2]}, headers={"X-A": "1"})
    assert built.payload == b'{"b":1,"a":[1,2]}'
    with pytest.raises(TypeError):
        built.headers["www-authenticate"] = "Basic"  # type: ignore[index]


def test_with_body_drops_a_reserved_header_even_when_handed_one() -> None:
    answer = (401, [("www-authenticate", 'Bearer realm="api"'), ("cache-control", "no-store"),
                    ("content-type", "application/json"), ("content-length", "2")], b"{}")
    status, headers, payload = with_body(answer, b"no", "text/plain", {"WWW-Authenticate": "Basic", "x-a": "1"})
    assert (status, payload) == (401, b"no")
    assert headers == [("www-authenticate", 'Bearer realm="api"'), ("cache-control", "no-store"),
                       ("x-a", "1"), ("content-type", "text/plain"), ("content-length", "2")]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_hook_bug_is_a_logged_503_with_the_default_body(
    driver: Driver, mode: Mode, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def shape(refusal: Refusal, request: RequestView | None) -> Any:
        raise KeyError("secret-claim")

    auth = Authenticator(config(clock, on_refusal=in_mode(mode, shape)))
    with client(driver, auth) as http:
        response = http.get("/me")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert body(response)["error"] == "temporarily_unavailable"
    assert "hook on_refusal raised KeyError" in caplog.text and "secret-claim" not in caplog.text


@pytest.mark.parametrize("result", [["not", "a", "body"], "text", {"when": object()},
                                    lambda: RefusalBody({"x": 1}, headers={"WWW-Authenticate": "Basic"})])
def test_a_hook_result_of_the_wrong_kind_is_a_503(result: Any, clock: FakeClock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    hook = (lambda refusal, request: result()) if callable(result) else (lambda refusal, request: result)
    auth = Authenticator(config(clock, on_refusal=hook))
    with client("wsgi", auth) as http:
        response = http.get("/me")
    assert response.status_code == 503
    assert "hook on_refusal" in caplog.text and [r for r in caplog.records if r.levelno == logging.ERROR]


def test_dpop_nonce_and_retry_after_stay_ours(clock: FakeClock) -> None:
    auth = Authenticator(config(clock, on_refusal=lambda refusal, request: {"shaped": True}))
    status, headers, payload = auth.render(UseDPoPNonce("use_dpop_nonce", headers={"DPoP-Nonce": "n1"}))
    assert (status, payload) == (401, b'{"shaped":true}')
    assert ("dpop-nonce", "n1") in headers
    from jwt_middleware.errors import RateLimited

    status, headers, _ = auth.render(RateLimited("too_many", retry_after=30))
    assert status == 429 and ("retry-after", "30") in headers


async def test_arender_awaits_and_render_runs_an_async_hook_to_completion(clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, on_refusal=problem_shaper("async", calls)))
    refusal = MissingToken("missing_token")
    assert (await auth.arender(refusal))[2] == b'{"type":"about:blank","status":401,"code":"unauthorized","path":null}'
    assert auth.render(refusal)[2] == (await auth.arender(refusal))[2]  # sync, from inside a running loop
    assert len(calls) == 3


def test_strip_failure_body_and_on_refusal_together_is_a_config_error(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="strip_failure_body answers every refusal with an empty body"):
        config(clock, strip_failure_body=True, on_refusal=lambda refusal, request: None)
    with pytest.raises(ConfigError, match=r"cannot be called as on_refusal\(refusal, request\)"):
        config(clock, on_refusal=lambda refusal: None)
