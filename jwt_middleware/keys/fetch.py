"""Fetch JWKS and OIDC discovery documents: timeout, body cap, same-host redirects, Cache-Control.

The only module that imports an HTTP client. ``fetch_document`` and ``afetch_document`` are
twins over the same pure helpers; they differ only by ``await``.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from ..config import KeyPolicy
from ..errors import ConfigError
from .sources import check_fetch_url

__all__ = ["FetchError", "Fetched", "afetch_document", "fetch_document", "parse_discovery"]

_MAX_REDIRECTS: Final = 3
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class FetchError(Exception):
    """A document could not be had: network, status, size, time or content. Never fatal alone."""


@dataclass(frozen=True, slots=True)
class Fetched:
    document: dict[str, Any]
    #: seconds from Cache-Control (0 for no-store/no-cache), None when absent
    max_age: float | None


def _client_options(policy: KeyPolicy) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(policy.fetch_timeout),
        "verify": policy.tls,
        "follow_redirects": False,
        "trust_env": False,
        "headers": {"accept": "application/json, application/jwk-set+json"},
    }


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _redirect_target(url: str, response: httpx.Response) -> str:
    """Follow a redirect only to the same scheme, host and port (no open redirect to attacker keys)."""
    location = response.headers.get("location")
    if not location:
        raise FetchError("redirect without Location")
    target = urljoin(url, location)
    old, new = urlsplit(url), urlsplit(target)
    if (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
        raise FetchError("redirect to another origin refused")
    return target


def _parse_body(body: bytes, cache_control: str | None) -> Fetched:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FetchError("body is not JSON") from exc
    if not isinstance(document, dict):
        raise FetchError("body is not a JSON object")
    return Fetched(document, _max_age(cache_control))


def _check_response(response: httpx.Response, policy: KeyPolicy) -> None:
    if response.status_code != 200:
        raise FetchError(f"status {response.status_code}")
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_jwks_bytes:
        raise FetchError("body over the size cap")


def _append_capped(buffer: bytearray, chunk: bytes, policy: KeyPolicy, deadline: float) -> None:
    buffer += chunk
    if len(buffer) > policy.max_jwks_bytes:
        raise FetchError("body over the size cap")
    if time.monotonic() > deadline:
        raise FetchError("fetch timed out")


def fetch_document(url: str, policy: KeyPolicy) -> Fetched:
    """GET a JSON document within ``policy.fetch_timeout`` and ``policy.max_jwks_bytes``.

    :raises FetchError: on any failure; the caller keeps its last good keys
    """
    deadline = time.monotonic() + policy.fetch_timeout
    try:
        with httpx.Client(**_client_options(policy)) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = _redirect_target(url, response)
                        continue
                    _check_response(response, policy)
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        _append_capped(body, chunk, policy, deadline)
                    return _parse_body(bytes(body), response.headers.get("cache-control"))
    except httpx.HTTPError as exc:
        raise FetchError(type(exc).__name__) from exc
    raise FetchError("too many redirects")


async def afetch_document(url: str, policy: KeyPolicy) -> Fetched:
    """The async twin of :func:`fetch_document`."""
    deadline = time.monotonic() + policy.fetch_timeout
    try:
        async with httpx.AsyncClient(**_client_options(policy)) as client:
            for _ in range(_MAX_REDIRECTS + 1):
                async with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = _redirect_target(url, response)
                        continue
                    _check_response(response, policy)
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        _append_capped(body, chunk, policy, deadline)
                    return _parse_body(bytes(body), response.headers.get("cache-control"))
    except httpx.HTTPError as exc:
        raise FetchError(type(exc).__name__) from exc
    raise FetchError("too many redirects")


def parse_discovery(fetched: Fetched, issuer: str) -> str:
    """Take ``jwks_uri`` from an OIDC discovery document whose ``issuer`` is exactly ours.

    :raises FetchError: issuer mismatch (OIDC Discovery §4.3) or a missing / non-https jwks_uri
    """
    document = fetched.document
    if document.get("issuer") != issuer:
        raise FetchError("discovery issuer does not match the configured issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError("discovery document has no jwks_uri")
    try:
        check_fetch_url(jwks_uri, "jwks_uri")
    except ConfigError as exc:
        raise FetchError("discovery jwks_uri is not https") from exc
    return jwks_uri
