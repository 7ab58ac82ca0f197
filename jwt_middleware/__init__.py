"""JWT middleware for any ASGI or WSGI app: find the token, verify it, attach the identity."""

import logging as _logging

from ._version import __version__ as __version__
from .asgi import JWTMiddleware
from .authenticator import Authenticator
from .config import Config, CookieSource, DPoPSettings, HeaderSource, Issuer, KeyPolicy, Rule
from .errors import (
    AuthError,
    ClaimsRejected,
    ConfigError,
    DPoPBindingMismatch,
    DPoPRequired,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidDPoPProof,
    InvalidRequest,
    InvalidToken,
    JWTMiddlewareError,
    MissingToken,
    RateLimited,
    Refusal,
    StoreError,
    StoreFull,
    Unavailable,
    UseDPoPNonce,
)
from .hooks import RefusalBody
from .identity import Identity
from .keys.sources import JWKSFile, JWKSUrl, OIDCDiscovery, SharedSecret, StaticKeys
from .proxies import TrustedProxies
from .request import RequestView
from .warmup import IssuerWarmup, WarmupError
from .wsgi import WSGIJWTMiddleware

__all__ = [
    # errors
    "AuthError",
    # the decision and its adapters
    "Authenticator",
    "ClaimsRejected",
    # configuration
    "Config",
    "ConfigError",
    "CookieSource",
    "DPoPBindingMismatch",
    "DPoPRequired",
    "DPoPSettings",
    "HeaderSource",
    "Identity",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "Issuer",
    "IssuerWarmup",
    "JWKSFile",
    "JWKSUrl",
    "JWTMiddleware",
    "JWTMiddlewareError",
    "KeyPolicy",
    "MissingToken",
    "OIDCDiscovery",
    "RateLimited",
    "Refusal",
    "RefusalBody",
    "RequestView",
    "Rule",
    "SharedSecret",
    "StaticKeys",
    "StoreError",
    "StoreFull",
    "TrustedProxies",
    "Unavailable",
    "UseDPoPNonce",
    "WSGIJWTMiddleware",
    "WarmupError",
]

# A library logs but never configures logging: without a handler of the app's, stay silent.
_logging.getLogger("jwt_middleware").addHandler(_logging.NullHandler())
