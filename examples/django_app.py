"""A single-file Django project with JWTAuthenticationMiddleware.

Run: ``gunicorn --threads 4 examples.django_app:app`` (or ``uvicorn examples.django_app:asgi_app``)
"""

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path

from ._shared import authenticator

AUTHENTICATOR = authenticator()

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-change-me-" + "x" * 32,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    MIDDLEWARE=["jwt_middleware.integrations.django.JWTAuthenticationMiddleware"],
    JWT_MIDDLEWARE_AUTHENTICATOR=AUTHENTICATOR,
)
django.setup()


def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"hello": "anyone"})


def me(request: HttpRequest) -> JsonResponse:
    identity = request.jwt_identity  # type: ignore[attr-defined]
    return JsonResponse({"sub": str(request.user), "scopes": sorted(identity.scopes)})


urlpatterns = [path("", home), path("me", me), path("admin", me)]

from django.core.asgi import get_asgi_application  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

app = get_wsgi_application()
asgi_app = get_asgi_application()
