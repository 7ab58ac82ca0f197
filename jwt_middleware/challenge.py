"""Turn a Refusal into an HTTP answer: status, headers and a small JSON body (RFC 6750 §3)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from .errors import AuthError, Refusal

__all__ = ["RESERVED_HEADERS", "Answer", "render_challenge", "with_body"]

#: (status, [(name, value)], body) with header names lower-case, as ASGI wants them.
Answer = tuple[int, list[tuple[str, str]], bytes]

# RFC 6749 §A.7/A.8: error and error_description are limited to %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE: Final = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_PARAM_ORDER: Final = ("error", "error_description", "scope", "algs", "acr_values", "max_age")
#: headers only this module sets on a refusal: the challenge (RFC 6750 §3), Retry-After
#: (RFC 9110 §10.2.3), DPoP-Nonce (RFC 9449 §8), no-store, and the body's type and length
RESERVED_HEADERS: Final = frozenset(
    {"www-authenticate", "retry-after", "dpop-nonce", "cache-control", "content-length", "content-type"}
)


def _quote(value: str) -> str:
    """Quote an auth-param value; characters outside RFC 6749's set are dropped, never escaped in."""
    return '"' + _UNSAFE.sub("", value) + '"'


def _challenge(scheme: str, realm: str, refusal: AuthError | None, algs: str | None) -> str:
    params: dict[str, str] = {"realm": realm}
    if refusal is not None and (refusal.presented_scheme or refusal.scheme) == scheme:
        if refusal.error:
            params["error"] = refusal.error
            params["error_description"] = refusal.description
        params.update(refusal.params)
    if scheme == "DPoP" and algs:
        params.setdefault("algs", algs)
    ordered = [
        "realm",
        *[k for k in _PARAM_ORDER if k in params],
        *sorted(set(params) - {"realm", *_PARAM_ORDER}),
    ]
    return scheme + " " + ", ".join(f"{k}={_quote(params[k])}" for k in ordered)


def render_challenge(
    refusal: Refusal,
    *,
    realm: str = "api",
    schemes: tuple[str, ...] = ("Bearer",),
    dpop_algs: str | None = None,
    strip_body: bool = False,
) -> Answer:
    """Render a refusal.

    One ``WWW-Authenticate`` header per scheme the server accepts (RFC 9449 §7.2 lets a
    server offer Bearer and DPoP together); only the challenge of the refusal's own scheme
    carries its ``error`` (§7.1: a DPoP token's ``invalid_token`` sits on the DPoP challenge),
    and a refusal marked ``only_own_scheme`` (a DPoP-only route) offers that scheme alone.
    Rate limits and outages get ``Retry-After`` (RFC 9110 §10.2.3). The body never holds a
    token byte or a claim value: only the error code and the class's constant description.
    """
    headers: list[tuple[str, str]] = []
    if isinstance(refusal, AuthError):
        own = refusal.presented_scheme or refusal.scheme
        if refusal.only_own_scheme:
            offered: tuple[str, ...] = (own,)
        else:
            offered = schemes if own in schemes else (own, *schemes)
        for scheme in offered:
            headers.append(("www-authenticate", _challenge(scheme, realm, refusal, dpop_algs)))
    if refusal.retry_after is not None:
        headers.append(("retry-after", str(int(refusal.retry_after))))
    for name, value in refusal.headers.items():
        headers.append((name.lower(), value))
    headers.append(("cache-control", "no-store"))
    if strip_body:
        headers.append(("content-length", "0"))
        return refusal.status, headers, b""
    document = {"error": refusal.error or _fallback_code(refusal), "error_description": refusal.description}
    body = json.dumps(document, separators=(",", ":")).encode()
    headers.append(("content-type", "application/json"))
    headers.append(("content-length", str(len(body))))
    return refusal.status, headers, body


def with_body(answer: Answer, body: bytes, content_type: str, headers: Mapping[str, str]) -> Answer:
    """``answer`` with another body (``on_refusal``'s) and extra headers after ours.

    The status, the challenge, ``Retry-After``, ``DPoP-Nonce`` and ``Cache-Control`` stay as
    rendered: an extra header of :data:`RESERVED_HEADERS` is dropped (``RefusalBody`` refuses
    one when it is built), and the body's own type and length are set here.
    """
    status, rendered, _ = answer
    kept = [(name, value) for name, value in rendered if name not in ("content-type", "content-length")]
    kept.extend((name, value) for name, value in headers.items() if name.lower() not in RESERVED_HEADERS)
    kept.append(("content-type", content_type))
    kept.append(("content-length", str(len(body))))
    return status, kept, body


def _fallback_code(refusal: Refusal) -> str:
    return {401: "unauthorized", 429: "rate_limited", 503: "temporarily_unavailable"}.get(
        refusal.status, "refused"
    )
