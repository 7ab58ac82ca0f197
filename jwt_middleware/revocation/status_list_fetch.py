"""Fetch one Status List Token over HTTPS (draft-ietf-oauth-status-list §8.1, §8.2): caps, time, place.

``afetch_status_list_token`` does the work; ``fetch_status_list_token`` is its sync twin and
runs it on a private event loop in a short-lived thread, for the reason keys/fetch.py gives:
httpx's timeouts are per read, and only a cancellable whole-fetch deadline bounds a server
that drips its answer.

Why not keys/fetch.py's ``afetch_document``: it parses a JSON document under the JWKS caps,
and a Status List Token is a compact JWS of up to megabytes. Its private event loop, TLS and
origin helpers are shared (``run_on_private_loop``, ``tls_verify``, ``same_origin``).

What is fetched, and how:
- ``Accept: application/statuslist+jwt`` (draft §8.1); the body is the compact JWS (§8.2).
  Its Content-Type is not trusted: the signed ``typ`` header is what is checked.
- Redirects (§8.2 says clients SHOULD follow them; §12.6 points at their dangers) are
  followed at most three times, only to the same scheme, host and port, and only to a URL
  the issuer's allowlist also accepts. Anything else is a failure: nothing is fetched from a
  place the issuer was not configured to publish from.
- The body is read incrementally and capped at ``max_token_bytes``, whatever Content-Length
  says. We ask for ``gzip`` (§8.2 recommends it) and inflate it ourselves with the same cap,
  so a small compressed body cannot expand into a large one in memory (httpx's own decoder
  inflates a whole chunk at once). Another Content-Encoding is refused.
- No proxy or .netrc from the environment (``trust_env=False``), TLS per the policy.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final
from urllib.parse import urljoin

import httpx

from ..keys.fetch import run_on_private_loop, same_origin, tls_verify
from .status_list import StatusListRules

__all__ = ["StatusListFetchError", "afetch_status_list_token", "fetch_status_list_token"]

_MAX_REDIRECTS: Final = 3
_HEADERS: Final = {"accept": "application/statuslist+jwt", "accept-encoding": "gzip"}


class StatusListFetchError(Exception):
    """No Status List Token could be had: network, TLS, status, redirect, size or time.

    ``str(exc)`` is a constant cause (or an httpx exception's class name), safe to log.
    """


def _redirect_target(url: str, response: httpx.Response, rules: StatusListRules) -> str:
    location: str | None = response.headers.get("location")
    if not location:
        raise StatusListFetchError("redirect without Location")
    target = urljoin(url, location)
    if not same_origin(url, target) or not rules.allows(target):
        raise StatusListFetchError("redirect off the allowed origin refused")
    return target


class _CappedBody:
    """The response body as it arrives, inflated when gzip, never past ``cap`` bytes."""

    def __init__(self, content_encoding: str | None, cap: int) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise StatusListFetchError("unsupported Content-Encoding")
        self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding != "identity" else None
        self._cap = cap
        self._raw = 0
        self._body = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._raw += len(chunk)
        if self._raw > self._cap:
            raise StatusListFetchError("body over the size cap")
        if self._gzip is None:
            self._body += chunk
            return
        if self._gzip.eof:
            raise StatusListFetchError("bytes after the end of the gzip body")
        try:
            self._body += self._gzip.decompress(chunk, self._cap - len(self._body) + 1)
        except zlib.error:
            raise StatusListFetchError("body is not gzip") from None
        if len(self._body) > self._cap:
            raise StatusListFetchError("body over the size cap")

    def finish(self) -> bytes:
        if self._gzip is not None and (not self._gzip.eof or self._gzip.unused_data):
            raise StatusListFetchError("gzip body truncated or followed by other bytes")
        return bytes(self._body)


def fetch_status_list_token(uri: str, rules: StatusListRules) -> bytes:
    """GET the Status List Token at ``uri`` within the policy's time and size caps.

    Runs :func:`afetch_status_list_token` on its own event loop in a short-lived thread, so
    it works whether or not the calling thread already runs a loop.

    :raises StatusListFetchError: on any failure; the cache keeps its last good list
    """
    return run_on_private_loop(
        lambda: afetch_status_list_token(uri, rules),
        name="jwt-status-list-fetch",
        backstop=rules.policy.fetch_timeout + 1.0,  # the fetch bounds itself; this is a backstop
        timed_out=lambda: StatusListFetchError("fetch timed out"),
    )


async def afetch_status_list_token(uri: str, rules: StatusListRules) -> bytes:
    """GET the Status List Token at ``uri`` within ``fetch_timeout`` (the whole fetch,
    redirects included) and ``max_token_bytes``.

    :raises StatusListFetchError: on any failure; the cache keeps its last good list
    """
    if not rules.allows(uri):  # reference_of checked it; a second look costs nothing
        raise StatusListFetchError("uri not allowed")
    try:
        async with asyncio.timeout(rules.policy.fetch_timeout):
            return await _afetch(uri, rules)
    except TimeoutError:
        raise StatusListFetchError("fetch timed out") from None


async def _afetch(url: str, rules: StatusListRules) -> bytes:
    policy = rules.policy
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(policy.fetch_timeout),
        verify=tls_verify(policy.tls),
        follow_redirects=False,
        trust_env=False,
    )
    try:
        async with client:
            for _ in range(_MAX_REDIRECTS + 1):
                async with client.stream("GET", url, headers=_HEADERS) as response:
                    if response.is_redirect:
                        url = _redirect_target(url, response, rules)
                        continue
                    if response.status_code != 200:
                        raise StatusListFetchError(f"status {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > policy.max_token_bytes:
                        raise StatusListFetchError("body over the size cap")
                    body = _CappedBody(response.headers.get("content-encoding"), policy.max_token_bytes)
                    async for chunk in response.aiter_raw():
                        body.feed(chunk)
                    return body.finish()
    except httpx.HTTPError as exc:
        raise StatusListFetchError(type(exc).__name__) from None
    raise StatusListFetchError("too many redirects")
