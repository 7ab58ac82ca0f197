"""Config.identity_loader: the app's user for a verified token, sync or async, under ASGI and WSGI.

Its result is the framework's user (``scope["user"]``, ``scope["jwt_middleware.user"]``,
``environ["jwt_middleware.user"]``, Flask's ``current_user()``); None is a 401 ``unknown_user``;
the ttl memo reuses one user for one verified token only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from jwt_middleware import Authenticator, ConfigError, Rule
from jwt_middleware.errors import ClaimsRejected, InvalidToken
from jwt_middleware.identity import Identity
from jwt_middleware.testing import FakeClock, as_identity, make_identity

from ._support import (
    DRIVERS,
    ISSUER,
    MARKER,
    MODES,
    Calls,
    Driver,
    Mode,
    User,
    bearer,
    body,
    challenges,
    client,
    config,
    in_mode,
    token,
    user_loader,
)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_the_loaded_user_is_the_framework_user(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, identity_loader=user_loader(mode, calls)))
    with client(driver, auth) as http:
        seen = http.get("/me", headers=bearer(token(clock, scope="read"))).json()
    user = {"name": "user-1", "tenant": "acme"}
    assert seen["user"] == user and seen["loaded"] == user and seen["scopes"] == ["read"]
    if driver == "asgi":
        assert seen["auth"] == "JWTCredentials"  # scope["auth"] still holds the token's scopes
    assert [identity.subject for identity in calls.seen] == ["user-1"]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_user_is_a_401_with_our_challenge(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    auth = Authenticator(config(clock, identity_loader=user_loader(mode, Calls())))
    with client(driver, auth) as http:
        response = http.get("/me", headers=bearer(token(clock, sub="ghost")))
    assert response.status_code == 401
    assert challenges(response) == [
        'Bearer realm="api", error="invalid_token", '
        'error_description="The access token does not name a known user"'
    ]
    assert body(response) == {"error": "invalid_token",
                              "error_description": "The access token does not name a known user"}


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_loader_bug_is_a_logged_503(driver: Driver, mode: Mode, clock: FakeClock,
                                      caplog: pytest.LogCaptureFixture) -> None:
    def load(identity: Identity) -> User:
        raise LookupError(f"no row for {identity.claims['tenant']}")

    auth = Authenticator(config(clock, identity_loader=in_mode(mode, load)))
    caplog.set_level(logging.DEBUG, logger="jwt_middleware")
    with client(driver, auth) as http:
        response = http.get("/me", headers=bearer(token(clock, tenant=MARKER)))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert "hook identity_loader raised LookupError" in caplog.text
    assert MARKER not in caplog.text and MARKER not in response.text
    denies = [getattr(r, "audit", {}) for r in caplog.records if r.levelno == logging.WARNING]
    assert [(d.get("reason"), d.get("subject")) for d in denies] == [("hook_error", "user-1")]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_a_loader_refusal_is_that_refusal(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    def load(identity: Identity) -> User:
        raise ClaimsRejected("user_disabled")

    auth = Authenticator(config(clock, identity_loader=in_mode(mode, load)))
    with client(driver, auth) as http:
        response = http.get("/me", headers=bearer(token(clock)))
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_without_a_ttl_the_user_is_loaded_on_every_request(driver: Driver, clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, identity_loader=user_loader("sync", calls)))
    same = token(clock)
    with client(driver, auth) as http:
        for _ in range(3):
            assert http.get("/me", headers=bearer(same)).status_code == 200
    assert len(calls) == 3


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("mode", MODES)
def test_the_ttl_reuses_one_user_for_one_token_only(driver: Driver, mode: Mode, clock: FakeClock) -> None:
    calls = Calls()
    users = {"user-1": User("user-1", "acme"), "user-2": User("user-2", "acme")}
    auth = Authenticator(config(clock, identity_loader=user_loader(mode, calls, users), identity_loader_ttl=60))
    first, second, other_user = token(clock), token(clock), token(clock, sub="user-2")
    with client(driver, auth) as http:
        for _ in range(3):
            assert http.get("/me", headers=bearer(first)).json()["user"]["name"] == "user-1"
        assert len(calls) == 1
        assert http.get("/me", headers=bearer(second)).status_code == 200  # same sub, another token
        assert http.get("/me", headers=bearer(other_user)).json()["user"]["name"] == "user-2"
        assert len(calls) == 3
        clock.advance(61)
        assert http.get("/me", headers=bearer(first)).status_code == 200
    assert len(calls) == 4 and calls.seen[0] is calls.seen[3]  # the same cached Identity, loaded again


def test_a_refused_or_unknown_user_is_not_remembered(clock: FakeClock) -> None:
    users: dict[str, User] = {}
    calls = Calls()
    auth = Authenticator(config(clock, identity_loader=user_loader("sync", calls, users), identity_loader_ttl=60))
    same = token(clock)
    with client("wsgi", auth) as http:
        assert http.get("/me", headers=bearer(same)).status_code == 401
        users["user-1"] = User("user-1", "acme")  # the account is created meanwhile
        assert http.get("/me", headers=bearer(same)).json()["user"]["name"] == "user-1"
    assert len(calls) == 2


@pytest.mark.parametrize("driver", DRIVERS)
def test_anonymous_access_loads_no_user(driver: Driver, clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, identity_loader=user_loader("sync", calls)))
    with client(driver, auth) as http:
        seen = http.get("/open").json()
    assert seen["sub"] is None and seen["loaded"] is None and not calls.seen
    assert seen["user"] == ("UnauthenticatedUser" if driver == "asgi" else None)


def test_load_user_and_aload_user_direct(clock: FakeClock) -> None:
    identity = make_identity("user-1", issuer=ISSUER)
    plain = Authenticator(config(clock))
    assert not plain.loads_users and plain.load_user(identity) is None
    assert asyncio.run(plain.aload_user(identity)) is None
    sync_auth = Authenticator(config(clock, identity_loader=user_loader("async", Calls())))
    assert sync_auth.load_user(identity) == User("user-1", "acme")  # an async loader run to completion
    assert asyncio.run(sync_auth.aload_user(identity)) == User("user-1", "acme")
    with pytest.raises(InvalidToken) as unknown:
        sync_auth.load_user(make_identity("ghost", issuer=ISSUER))
    assert unknown.value.reason == "unknown_user"


def test_load_user_from_async_code_still_finishes_an_async_loader(clock: FakeClock) -> None:
    """The sync API used inside a running loop runs the loader on a helper thread's loop."""
    auth = Authenticator(config(clock, identity_loader=user_loader("async", Calls())))

    async def inside() -> Any:
        return auth.load_user(make_identity("user-1", issuer=ISSUER))

    assert asyncio.run(inside()) == User("user-1", "acme")


def test_a_fixed_identity_in_tests_gets_the_loaded_user_too(clock: FakeClock) -> None:
    from starlette.testclient import TestClient

    from ._support import starlette_app

    auth = as_identity(make_identity("user-1", issuer=ISSUER),
                       config(clock, identity_loader=user_loader("sync", Calls())))
    with TestClient(starlette_app(auth)) as http:
        assert http.get("/me").json()["user"] == {"name": "user-1", "tenant": "acme"}


def test_litestar_request_user_is_the_loaded_user(clock: FakeClock) -> None:
    from litestar import Litestar, Request, get
    from litestar.testing import TestClient

    from jwt_middleware.integrations.litestar import wrap

    @get("/me")
    async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
        user = request.user
        return {"name": user.name, "tenant": user.tenant}

    auth = Authenticator(config(clock, identity_loader=user_loader("async", Calls())))
    with TestClient(wrap(Litestar([me]), auth)) as http:  # type: ignore[type-var]
        assert http.get("/me", headers=bearer(token(clock))).json() == {"name": "user-1", "tenant": "acme"}


def test_flask_current_user_without_a_loader_says_so(clock: FakeClock) -> None:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, current_user

    app = Flask(__name__)
    errors: list[str] = []

    @app.get("/me")
    @app.get("/open")
    def me() -> str:
        try:
            return repr(current_user())
        except RuntimeError as exc:
            errors.append(str(exc))
            return "error"

    JWTFlask(app, Authenticator(config(clock)))
    with app.test_client() as http:
        assert http.get("/open").text == "None"  # anonymous: no user either way
        assert http.get("/me", headers=bearer(token(clock))).text == "error"
    assert errors and "set Config(identity_loader=...)" in errors[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"identity_loader_ttl": 60}, "identity_loader_ttl: set identity_loader too"),
        ({"identity_loader": lambda identity: None, "identity_loader_ttl": -1}, "must be >= 0 seconds"),
        ({"identity_loader": lambda identity: None, "identity_loader_ttl": float("nan")}, "finite"),
        ({"identity_loader": "myapp.users.load"}, "Config.identity_loader: a str given"),
    ],
)
def test_loader_configuration_mistakes(options: dict[str, Any], message: str, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match=message):
        config(clock, **options)


def test_a_loader_runs_after_the_decision_so_a_refused_token_loads_nothing(clock: FakeClock) -> None:
    calls = Calls()
    auth = Authenticator(config(clock, identity_loader=user_loader("sync", calls),
                                rules=(Rule("/me", scopes=("admin",)),)))
    for driver in DRIVERS:
        with client(driver, auth) as http:
            assert http.get("/me", headers=bearer(token(clock, scope="read"))).status_code == 403
            assert http.get("/me").status_code == 401
    assert not calls.seen
