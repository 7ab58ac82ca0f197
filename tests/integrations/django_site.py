"""Django sites whose settings the suite's own process cannot have (settings are configured once
per process): ``python -m tests.integrations.django_site <site> <tmp dir>`` configures one,
runs every scenario of that site through Django's test client (WSGI) and Django's ASGI handler
under httpx, and prints one JSON object: what each scenario observed, or what it raised.

``bare``: no ``django.contrib.auth``, no ``contenttypes``, no database (an API without users).
``users``: Django's real ``User`` in a sqlite database in the tmp dir, migrated, with the
system checks installed (``jwt_middleware.integrations.django_checks``).

This module is also the URLconf of those sites, and of tests/integrations/test_django_edges.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jwt_middleware import Authenticator, Config, HeaderSource, Issuer, Rule, StaticKeys
from jwt_middleware.testing import make_key, mint, public_jwks

from . import apps

MIDDLEWARE = "jwt_middleware.integrations.django.JWTAuthenticationMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
OTHER_ISSUER = "https://other.test"
OTHER_KEY = make_key("ES256", kid="other-1")
RULES = (Rule("/whoami", access="optional"), Rule("/awhoami", access="optional"), Rule("/alogin", access="optional"),
         Rule("/public", access="public"))


def authenticator(loader: Any = None, *, several_issuers: bool = False, **options: Any) -> Authenticator:
    issuers = [Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))]
    if several_issuers:
        issuers.append(Issuer(OTHER_ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(OTHER_KEY))))
    options.setdefault("rules", RULES)
    options.setdefault("sources", (HeaderSource(),))
    return Authenticator(Config(issuers=issuers, audience="api", clock=apps.CLOCK, identity_loader=loader,
                                **options))


def token(sub: object = "user-1", *, other_issuer: bool = False, **claims: Any) -> str:
    key, issuer = (OTHER_KEY, OTHER_ISSUER) if other_issuer else (apps.KEY, apps.ISSUER)
    return mint(key, {"sub": sub, **claims}, issuer=issuer, now=apps.CLOCK.now)


# -- views: each says who Django thinks the caller is -------------------------------------------------


def _who(request: Any) -> dict[str, Any]:
    user = request.user
    identity = getattr(request, "jwt_identity", None)
    return {
        "class": type(user).__name__, "module": type(user).__module__, "username": user.get_username(),
        "pk": None if user.pk is None else str(user.pk), "authenticated": user.is_authenticated,
        "anonymous": user.is_anonymous, "str": str(user), "has_perm": user.has_perm("app.view"),
        "has_no_perms": user.has_perms([]), "subject": identity.subject if identity else None,
        "csrf_exempt": getattr(request, "_dont_enforce_csrf_checks", False),
    }


def whoami(request: Any) -> Any:
    from django.http import JsonResponse

    return JsonResponse({"handler": "whoami", **_who(request)})


async def awhoami(request: Any) -> Any:
    from asgiref.sync import sync_to_async
    from django.http import JsonResponse

    # Why sync_to_async: User.has_perm asks the ORM, which refuses to run in the event loop.
    who = await sync_to_async(_who)(request)
    return JsonResponse({"handler": "awhoami", **who, "auser": type(await request.auser()).__name__})


def _urlpatterns() -> list[Any]:
    from django.urls import path

    from jwt_middleware.integrations.django import require_scopes

    return [path("whoami", whoami), path("awhoami", awhoami), path("public", whoami),
            path("scoped", require_scopes("admin")(whoami)), path("ascoped", require_scopes("admin")(awhoami))]


urlpatterns = _urlpatterns()


# -- running requests ---------------------------------------------------------------------------------


def answer(response: Any) -> dict[str, Any]:
    """What a client saw: status, challenge and body (JSON when it is JSON)."""
    content = response.content
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = content.decode("utf-8", "replace")[:300]
    return {"status": response.status_code, "www": response.headers.get("www-authenticate"), "body": body}


@contextmanager
def using(auth: Authenticator, **more: Any) -> Iterator[None]:
    from django.test import override_settings

    with override_settings(JWT_MIDDLEWARE_AUTHENTICATOR=auth, **more):
        yield


def wsgi(auth: Authenticator, path: str, bearer: str | None = None, **more: Any) -> dict[str, Any]:
    """One request through Django's WSGI test client, with a fresh handler reading ``auth``."""
    from django.test import Client

    headers = {"HTTP_AUTHORIZATION": f"Bearer {bearer}"} if bearer else {}
    with using(auth, **more):
        return answer(Client().get(path, **headers))


def asgi(auth: Authenticator, path: str, bearer: str | None = None, **more: Any) -> dict[str, Any]:
    """One request through Django's ASGI handler (``get_asgi_application``) under httpx."""
    import httpx
    from django.core.asgi import get_asgi_application

    async def run() -> Any:
        transport = httpx.ASGITransport(app=get_asgi_application())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
            return await client.get(path, headers=headers)

    with using(auth, **more):
        return answer(asyncio.run(run()))


def starts(auth: Authenticator, **more: Any) -> dict[str, Any]:
    """Whether Django's WSGI and ASGI handlers load their middleware with these settings."""
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    found = {}
    with using(auth, **more):
        for name, load in (("wsgi", get_wsgi_application), ("asgi", get_asgi_application)):
            try:
                load()
                found[name] = "started"
            except Exception as exc:  # what it raised is the observation
                found[name] = f"{type(exc).__name__}: {exc}"
    return found


def check(**more: Any) -> dict[str, Any]:
    """``manage.py check``: its output, and the ids it reported (an error raises SystemCheckError)."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.test import override_settings

    out = io.StringIO()
    with override_settings(**more):
        try:
            call_command("check", stdout=out, stderr=out)
            raised = None
        except SystemCheckError as exc:
            out.write(str(exc))
            raised = "SystemCheckError"
    text = out.getvalue()
    ids = sorted(set(re.findall(r"\((jwt_middleware\.[EW]\d{3})\)", text)))
    return {"raised": raised, "ids": ids, "output": text}


# -- the sites ----------------------------------------------------------------------------------------


def configure_bare() -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="tests-only-" + "x" * 40, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
        INSTALLED_APPS=["jwt_middleware.integrations.django_checks"], MIDDLEWARE=[MIDDLEWARE],
        JWT_MIDDLEWARE_AUTHENTICATOR=authenticator(),
    )
    django.setup()


def bare_scenarios() -> dict[str, Callable[[], Any]]:
    from jwt_middleware.integrations.django_users import UserModelLoader

    plain = authenticator()
    return {
        "wsgi_bearer": lambda: wsgi(plain, "/whoami", token("alice")),
        "wsgi_anonymous": lambda: wsgi(plain, "/whoami"),
        "asgi_bearer": lambda: asgi(plain, "/awhoami", token("alice")),
        "asgi_anonymous": lambda: asgi(plain, "/awhoami"),
        "wsgi_refused": lambda: wsgi(plain, "/whoami", "not-a-token"),
        "auth_models_imported": lambda: sorted(m for m in sys.modules if m.startswith("django.contrib.auth")
                                                or m.startswith("django.contrib.contenttypes")),
        "user_loader_needs_auth": lambda: starts(authenticator(UserModelLoader())),
        "checks": lambda: check(),
        "checks_bad_loader": lambda: check(JWT_MIDDLEWARE_AUTHENTICATOR=authenticator(UserModelLoader())),
    }


def configure_users(tmp: str) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    from jwt_middleware.integrations.django_users import UserModelLoader

    settings.configure(
        DEBUG=False, SECRET_KEY="tests-only-" + "x" * 40, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth",
                        "jwt_middleware.integrations.django_checks"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{tmp}/db.sqlite3"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        MIDDLEWARE=[MIDDLEWARE], JWT_MIDDLEWARE_AUTHENTICATOR=authenticator(UserModelLoader()),
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    )
    django.setup()
    call_command("migrate", verbosity=0)


def users_scenarios() -> dict[str, Callable[[], Any]]:
    from django.contrib.auth import get_user_model

    from jwt_middleware.integrations.django_users import AsyncUserModelLoader, UserModelLoader

    model = get_user_model()
    alice = model.objects.create(username="alice", first_name="Al")
    bob = model.objects.create(username="bob", first_name="Al", is_active=False)
    carol = model.objects.create(username="carol")
    alice_id, bob_id = str(alice.pk), str(bob.pk)
    by_pk, by_pk_async = authenticator(UserModelLoader()), authenticator(AsyncUserModelLoader())

    def shaped(refusal: Any, request: Any) -> dict[str, Any]:
        return {"problem": refusal.reason, "path": request.path if request is not None else None}

    def reuse(ttl: float) -> list[Any]:
        """One token's user while the user is deactivated: reused within ``ttl``, reloaded after."""
        auth = authenticator(UserModelLoader(), identity_loader_ttl=ttl)
        first = token(str(carol.pk))
        seen = [wsgi(auth, "/whoami", first)["status"]]
        model.objects.filter(pk=carol.pk).update(is_active=False)
        seen += [wsgi(auth, "/whoami", first)["status"], wsgi(auth, "/whoami", token(str(carol.pk)))["status"]]
        apps.CLOCK.advance(ttl + 1)
        seen.append(wsgi(auth, "/whoami", first)["status"])
        apps.CLOCK.advance(-(ttl + 1))
        model.objects.filter(pk=carol.pk).update(is_active=True)
        return seen

    return {
        "wsgi_active": lambda: wsgi(by_pk, "/whoami", token(alice_id)),
        "wsgi_inactive": lambda: wsgi(by_pk, "/whoami", token(bob_id)),
        "wsgi_unknown": lambda: wsgi(by_pk, "/whoami", token("999999")),
        "wsgi_not_a_key": lambda: wsgi(by_pk, "/whoami", token("alice")),
        "wsgi_claim_absent": lambda: wsgi(authenticator(UserModelLoader(claim="user_id")), "/whoami", token(alice_id)),
        "wsgi_claim_not_text": lambda: wsgi(authenticator(UserModelLoader(claim="user")), "/whoami",
                                            token(alice_id, user={"id": 1})),
        "wsgi_by_username": lambda: wsgi(authenticator(UserModelLoader(field="username")), "/whoami", token("alice")),
        "wsgi_async_loader": lambda: wsgi(by_pk_async, "/whoami", token(alice_id)),
        "wsgi_async_loader_inactive": lambda: wsgi(by_pk_async, "/whoami", token(bob_id)),
        "wsgi_anonymous": lambda: wsgi(by_pk, "/whoami"),
        "asgi_sync_loader": lambda: asgi(by_pk, "/awhoami", token(alice_id)),
        "asgi_sync_loader_inactive": lambda: asgi(by_pk, "/awhoami", token(bob_id)),
        "asgi_async_loader": lambda: asgi(by_pk_async, "/awhoami", token(alice_id)),
        "asgi_async_loader_inactive": lambda: asgi(by_pk_async, "/awhoami", token(bob_id)),
        "asgi_async_loader_unknown": lambda: asgi(by_pk_async, "/awhoami", token("999999")),
        "asgi_sync_view_sync_loader": lambda: asgi(by_pk, "/whoami", token(alice_id)),
        "not_unique_field": lambda: starts(authenticator(UserModelLoader(field="first_name"))),
        "no_such_field": lambda: starts(authenticator(UserModelLoader(field="nickname"))),
        "several_issuers": lambda: starts(authenticator(UserModelLoader(), several_issuers=True)),
        "untrusted_issuer": lambda: starts(authenticator(UserModelLoader(issuer="https://nobody.test"))),
        "several_issuers_pinned": lambda: [
            wsgi(authenticator(UserModelLoader(issuer=apps.ISSUER), several_issuers=True), "/whoami", t)
            for t in (token(alice_id), token(alice_id, other_issuer=True))
        ],
        "on_refusal_wsgi": lambda: wsgi(authenticator(UserModelLoader(), on_refusal=shaped), "/whoami", token(bob_id)),
        "on_refusal_asgi": lambda: asgi(authenticator(AsyncUserModelLoader(), on_refusal=shaped), "/awhoami",
                                        token(bob_id)),
        "on_refusal_require_scopes": lambda: [
            wsgi(authenticator(on_refusal=shaped), "/scoped", token(alice_id)),
            asgi(authenticator(on_refusal=shaped), "/ascoped", token(alice_id)),
        ],
        "reuse_within_ttl": lambda: reuse(60.0),
        "reuse_without_ttl": lambda: reuse(0.0),
        "checks": lambda: check(),
        "checks_wrong_order": lambda: check(MIDDLEWARE=[SESSION_MIDDLEWARE, MIDDLEWARE, AUTH_MIDDLEWARE]),
        "checks_right_order": lambda: check(MIDDLEWARE=[SESSION_MIDDLEWARE, AUTH_MIDDLEWARE, MIDDLEWARE]),
        "checks_no_middleware": lambda: check(MIDDLEWARE=[SESSION_MIDDLEWARE]),
        "checks_bad_loader": lambda: check(JWT_MIDDLEWARE_AUTHENTICATOR=authenticator(UserModelLoader(field="first_name"))),
        "checks_bad_setting": lambda: check(JWT_MIDDLEWARE_AUTHENTICATOR="tests.integrations.nowhere.AUTH"),
    }


def run(scenarios: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, scenario in scenarios.items():
        try:
            seen[name] = scenario()
        except Exception as exc:  # reported to the test, which fails on it
            seen[name] = {"raised": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    return seen


def main(site: str, tmp: str) -> None:
    if site == "bare":
        configure_bare()
        seen = run(bare_scenarios())
    else:
        configure_users(tmp)
        seen = run(users_scenarios())
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
