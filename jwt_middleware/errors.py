"""The exception tree: what went wrong, and the HTTP answer each outcome carries.

::

    * JWTMiddlewareError
      x ConfigError                        raised at construction, never per request
      x StoreError(original)               backend failure; the pipeline turns it into Unavailable
        x StoreFull                        a bounded memory store that would have to evict a live entry
      x Refusal                            the app is not called; the adapter renders the answer
        + AuthError                        carries a WWW-Authenticate challenge (RFC 6750 §3)
          - MissingToken                   401  no error code (RFC 6750 §3.1)
          - InvalidRequest                 400  invalid_request
          - InvalidToken                   401  invalid_token
            - DPoPBindingMismatch          401  DPoP invalid_token: proof key is not cnf.jkt (RFC 9449 §7.1)
            - ClaimsRejected               401  invalid_token: the app's claims_validator refused a value
          - InsufficientScope              403  insufficient_scope (+ scope)
          - InsufficientUserAuthentication 401  insufficient_user_authentication (RFC 9470)
          - DPoPRequired                   401  DPoP, no error code (RFC 9449 §7.1)
          - InvalidDPoPProof               401  DPoP invalid_dpop_proof (RFC 9449 §7.1)
          - UseDPoPNonce                   401  DPoP use_dpop_nonce + DPoP-Nonce (RFC 9449 §8)
        + RateLimited                      429  Retry-After
        + Unavailable                      503  Retry-After (no keys, store down)

Every refusal carries a machine ``reason`` (for audit and metrics) and a
**constant** description: claim values, ``kid``, ``iss`` or token bytes never
appear in one (the PyJWT echo bug).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthError",
    "ClaimsRejected",
    "ConfigError",
    "DPoPBindingMismatch",
    "DPoPRequired",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidDPoPProof",
    "InvalidRequest",
    "InvalidToken",
    "JWTMiddlewareError",
    "MissingToken",
    "RateLimited",
    "Refusal",
    "StoreError",
    "StoreFull",
    "Unavailable",
    "UseDPoPNonce",
]


class JWTMiddlewareError(Exception):
    """Base of every exception this package raises on purpose."""


class ConfigError(JWTMiddlewareError, ValueError):
    """A configuration mistake, raised when the object is built, with the option and the fix."""


class StoreError(JWTMiddlewareError):
    """A store backend failed; ``original`` is the backend's own exception."""

    def __init__(self, original: BaseException | str) -> None:
        super().__init__(str(original))
        self.original = original


class StoreFull(StoreError):
    """A bounded store is full of live entries; evicting one would open a replay gap."""


class Refusal(JWTMiddlewareError):
    """The request is refused; the app is not called.

    :param reason: a stable machine code for audit and metrics (``expired_token``)
    :param description: a constant, safe text; defaults to the class's own
    """

    status: ClassVar[int] = 401
    #: RFC 6750 / 9449 / 9470 ``error`` value, or None for a bare challenge.
    error: ClassVar[str | None] = None
    #: the auth scheme the challenge names.
    scheme: ClassVar[str] = "Bearer"
    default_description: ClassVar[str] = "The request was refused"
    #: challenge with this refusal's scheme alone: the route accepts no other (a DPoP-only
    #: route offers no Bearer challenge); a class default, set per refusal where it applies
    only_own_scheme: bool = False
    #: the scheme the client presented its token with, when it was not this class's own (a
    #: DPoP token refused by a Bearer-agnostic check): the error goes on that challenge
    #: (RFC 9449 §7.1); set per refusal by the Authenticator
    presented_scheme: str | None = None

    def __init__(
        self,
        reason: str,
        description: str | None = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.reason = reason
        self.description = description or self.default_description
        #: extra auth-params for the challenge (``scope``, ``algs``, ``acr_values``, ``max_age``)
        self.params = params or {}
        #: extra response headers (``DPoP-Nonce``)
        self.headers = headers or {}
        self.retry_after = retry_after
        super().__init__(f"{reason}: {self.description}")


class AuthError(Refusal):
    """A refusal answered with a ``WWW-Authenticate`` challenge."""


class MissingToken(AuthError):
    status = 401
    error = None
    default_description = "Authentication is required"


class InvalidRequest(AuthError):
    status = 400
    error = "invalid_request"
    default_description = "The request is malformed"


class InvalidToken(AuthError):
    status = 401
    error = "invalid_token"
    default_description = "The access token is invalid"


class DPoPBindingMismatch(InvalidToken):
    """A DPoP-scheme token not bound to the proof's key: ``invalid_token`` on the DPoP challenge.

    RFC 9449 §7.1 (figure 20): ``WWW-Authenticate: DPoP error="invalid_token", algs="…"``; a
    Bearer challenge beside it carries no error. Still an :class:`InvalidToken`.
    """

    scheme = "DPoP"
    default_description = "The access token is not bound to this DPoP key"


class ClaimsRejected(InvalidToken):
    """The app's ``claims_validator`` refused a claim value (a tenant, an ``azp`` / ``client_id``
    outside an allowlist): ``invalid_token`` (RFC 6750 §3.1), as for any other failed claim check.

    ``reason`` names what was refused, for audit and metrics (``ClaimsRejected("tenant_not_allowed")``);
    the description stays constant unless you give one (never put a claim value in it).
    """

    default_description = "The access token is not accepted here"

    def __init__(
        self,
        reason: str = "claims_rejected",
        description: str | None = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason, description, params=params, headers=headers)


class InsufficientScope(AuthError):
    status = 403
    error = "insufficient_scope"
    default_description = "The access token lacks a required scope"


class InsufficientUserAuthentication(AuthError):
    status = 401
    error = "insufficient_user_authentication"
    default_description = "A stronger or more recent authentication is required"


class InvalidDPoPProof(AuthError):
    status = 401
    error = "invalid_dpop_proof"
    scheme = "DPoP"
    default_description = "The DPoP proof is invalid"


class DPoPRequired(AuthError):
    """The route takes DPoP-bound tokens only; a bare DPoP challenge (RFC 9449 §7.1)."""

    status = 401
    error = None
    scheme = "DPoP"
    default_description = "This resource requires a DPoP-bound access token"
    only_own_scheme = True  # raised only where DPoP is required: no Bearer challenge


class UseDPoPNonce(AuthError):
    status = 401
    error = "use_dpop_nonce"
    scheme = "DPoP"
    default_description = "A DPoP nonce from the server is required"


class RateLimited(Refusal):
    status = 429
    error = None
    default_description = "Too many requests"


class Unavailable(Refusal):
    status = 503
    error = None
    default_description = "Authentication is temporarily unavailable"
