"""Fetch JWKS and OIDC discovery documents: timeout, body cap, same-host redirects, Cache-Control.

The only module that imports an HTTP client. ``afetch_document`` does the work over the pure
helpers; ``fetch_document`` is its sync twin and runs it on a private event loop.

Why not httpx's sync client for the twin: httpx timeouts are per read, so an issuer that drips
its response head one byte at a time never trips them (a 0.5 s ``fetch_timeout`` took 25 s).
Only a cancellable whole-fetch deadline bounds that, and cancelling a sync read is not possible.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import threading
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
        "verify": _tls(policy.tls),
        "follow_redirects": False,
        "trust_env": False,
        "headers": {"accept": "application/json, application/jwk-set+json"},
    }


def _tls(tls: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
    """A CA bundle path becomes a context here: httpx >= 0.28 deprecates ``verify=<str>``."""
    if not isinstance(tls, str):
        return tls
    if os.path.isdir(tls):
        return ssl.create_default_context(capath=tls)
    return ssl.create_default_context(cafile=tls)


def _max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def _redirect_target(url: str, response: httpx.Response) -> str:
    """Follow a redirect only to the same scheme, host and port (no open redirect to attacker keys)."""
    location: str | None = response.headers.get("location")
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

    Runs :func:`afetch_document` on its own event loop in a short-lived thread, so it works
    whether or not the calling thread already runs a loop.

    :raises FetchError: on any failure; the caller keeps its last good keys
    """
    outcome: list[Fetched | BaseException] = []

    def work() -> None:
        try:
            outcome.append(asyncio.run(afetch_document(url, policy)))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=work, name="jwt-keys-fetch", daemon=True)
    worker.start()
    worker.join(policy.fetch_timeout + 1.0)  # afetch_document bounds itself; this is a backstop
    if not outcome:
        raise FetchError("fetch timed out")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


async def afetch_document(url: str, policy: KeyPolicy) -> Fetched:
    """GET a JSON document within ``policy.fetch_timeout`` (the whole fetch, redirects included)
    and ``policy.max_jwks_bytes``.

    :raises FetchError: on any failure; the caller keeps its last good keys
    """
    try:
        async with asyncio.timeout(policy.fetch_timeout):
            return await _afetch(url, policy)
    except TimeoutError as exc:
        raise FetchError("fetch timed out") from exc


async def _afetch(url: str, policy: KeyPolicy) -> Fetched:
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
