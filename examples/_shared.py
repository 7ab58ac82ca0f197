"""The configuration every example shares: one issuer, one audience, an in-memory key.

The key comes from the private JWK file named by ``JWT_EXAMPLE_KEY_FILE``; without it a key is
generated and a one-hour demo token is printed at start, so every example runs as is.
"""

from __future__ import annotations

import json
import os
import sys

from joserfc.jwk import JWKRegistry, Key

from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys
from jwt_middleware.testing import make_key, mint, public_jwks

ISSUER = "https://issuer.example"
AUDIENCE = "example-api"


def _key() -> Key:
    path = os.environ.get("JWT_EXAMPLE_KEY_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            return JWKRegistry.import_key(json.load(handle))
    key = make_key("ES256", kid="example-1")
    print("demo token (scope read admin):", mint(key, {"scope": "read admin"}, issuer=ISSUER,
          audience=AUDIENCE, lifetime=3600), file=sys.stderr)
    return key


def authenticator(*docs: Rule) -> Authenticator:
    """Routes: ``/`` and the API docs (``docs``: the framework's own ``docs_rules(app)``) are
    public, ``/admin`` needs scope ``admin``, everything else a valid token."""
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(_key())))
    rules = (Rule("/", access="public"), *docs, Rule("/admin", scopes=("admin",)))
    return Authenticator(Config(issuers=(issuer,), audience=AUDIENCE, rules=rules))
