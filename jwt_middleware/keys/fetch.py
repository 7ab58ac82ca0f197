"""Fetch JWKS and OIDC discovery documents: timeout, body cap, same-host redirects, Cache-Control.

The only module that imports an HTTP client. ``afetch_document`` does the work over the pure
helpers; ``fetch_document`` is its sync twin and runs it on a private event loop. Every
:class:`FetchError` names the URL asked for and the cause (``ConnectError: [Errno -2] Name or
service not known``, ``HTTP 503 Service Unavailable``), so the log line an operator reads says
what to fix; never a response body or key material.

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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, TypeVar
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from ..config import KeyPolicy
from ..errors import ConfigError
from .sources import check_fetch_url

__all__ = [
    "FetchError",
    "Fetched",
    "afetch_document",
    "describe_exception",
    "fetch_document",
    "loggable_url",
    "parse_discovery",
    "run_on_private_loop",
    "same_origin",
    "tls_verify",
]

_T = TypeVar("_T")

_MAX_REDIRECTS: Final = 3
_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)
#: longest cause text kept from a library's exception message (a log line, not a dump)
_MAX_CAUSE_CHARS: Final = 200


class FetchError(Exception):
    """A document could not be had: network, status, size, time or content. Never fatal alone.

    :param cause: what went wrong, safe to log (no body, no key material)
    :param url: the URL that was asked for (userinfo removed), when known
    """

    def __init__(self, cause: str, url: str | None = None) -> None:
        self.cause = cause
        self.url = loggable_url(url) if url is not None else None
        super().__init__(f"{self.url}: {cause}" if self.url else cause)


@dataclass(frozen=True, slots=True)
class Fetched:
    document: dict[str, Any]
    #: seconds from Cache-Control (0 for no-store/no-cache), None when absent
    max_age: float | None
    #: where the document came from (the URL asked for, or a file path), for messages
    url: str | None = None


def loggable_url(url: str) -> str:
    """``url`` without a password in its userinfo: it goes into logs and exception messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line, capped: the cause an operator needs, e.g.
    ``ConnectError: [Errno -2] Name or service not known``. The type alone when it says nothing."""
    text = " ".join(str(exc).split())
    if len(text) > _MAX_CAUSE_CHARS:
        text = text[: _MAX_CAUSE_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _client_options(policy: KeyPolicy) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(policy.fetch_timeout),
        "verify": tls_verify(policy.tls),
        "follow_redirects": False,
        "trust_env": False,
        "headers": {"accept": "application/json, application/jwk-set+json"},
    }


def tls_verify(tls: ssl.SSLContext | str | bool) -> ssl.SSLContext | bool:
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
        raise FetchError(f"HTTP {response.status_code} redirect without Location")
    target = urljoin(url, location)
    if not same_origin(url, target):
        new = urlsplit(target)
        raise FetchError(
            f"redirect to another origin refused ({new.scheme}://{new.hostname})"[:_MAX_CAUSE_CHARS]
        )
    return target


def same_origin(url: str, target: str) -> bool:
    """Whether ``target`` has ``url``'s scheme, host and port (a port that is not a number: no)."""
    old, new = urlsplit(url), urlsplit(target)
    try:
        return (old.scheme, old.hostname, old.port) == (new.scheme, new.hostname, new.port)
    except ValueError:  # urlsplit reads the port lazily and refuses one that is not a number
        return False


def _parse_body(body: bytes, cache_control: str | None, url: str) -> Fetched:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        # Why the decoder's message and not the body: it says where (line, column), never what.
        raise FetchError(f"body is not JSON ({describe_exception(exc)})") from exc
    if not isinstance(document, dict):
        raise FetchError(f"body is JSON but not an object (a {type(document).__name__})")
    return Fetched(document, _max_age(cache_control), url)


def _check_response(response: httpx.Response, policy: KeyPolicy) -> None:
    if response.status_code != 200:
        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".rstrip())
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_jwks_bytes:
        raise FetchError(_over_cap(policy, f"Content-Length {declared}"))


def _over_cap(policy: KeyPolicy, seen: str) -> str:
    return f"body over the size cap ({seen} > KeyPolicy.max_jwks_bytes={policy.max_jwks_bytes})"


def _timed_out(policy: KeyPolicy) -> str:
    return f"timed out after {policy.fetch_timeout:g} s (KeyPolicy.fetch_timeout)"


def _append_capped(buffer: bytearray, chunk: bytes, policy: KeyPolicy, deadline: float) -> None:
    buffer += chunk
    if len(buffer) > policy.max_jwks_bytes:
        raise FetchError(_over_cap(policy, f"{len(buffer)} bytes read"))
    if time.monotonic() > deadline:
        raise FetchError(_timed_out(policy))


def fetch_document(url: str, policy: KeyPolicy) -> Fetched:
    """GET a JSON document within ``policy.fetch_timeout`` and ``policy.max_jwks_bytes``.

    Runs :func:`afetch_document` on its own event loop in a short-lived thread, so it works
    whether or not the calling thread already runs a loop.

    :raises FetchError: on any failure; the caller keeps its last good keys
    """
    return run_on_private_loop(
        lambda: afetch_document(url, policy),
        name="jwt-keys-fetch",
        backstop=policy.fetch_timeout + 1.0,  # afetch_document bounds itself; this is a backstop
        timed_out=lambda: FetchError(_timed_out(policy), url),
    )


def run_on_private_loop(
    work: Callable[[], Coroutine[Any, Any, _T]],
    *,
    name: str,
    backstop: float,
    timed_out: Callable[[], BaseException],
) -> _T:
    """``work()`` run to its end on a new event loop in a short-lived daemon thread.

    The sync twins' way to a cancellable whole-fetch deadline (see the module docstring), and
    it works whether or not the calling thread already runs a loop. What ``work`` raises is
    raised here; ``timed_out()`` is raised if it has not ended after ``backstop`` seconds.
    """
    outcome: list[_T | BaseException] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(work()))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(backstop)
    if not outcome:
        raise timed_out()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


async def afetch_document(url: str, policy: KeyPolicy) -> Fetched:
    """GET a JSON document within ``policy.fetch_timeout`` (the whole fetch, redirects included)
    and ``policy.max_jwks_bytes``.

    :raises FetchError: on any failure, naming ``url`` and the cause; the caller keeps its last
        good keys
    """
    try:
        async with asyncio.timeout(policy.fetch_timeout):
            return await _afetch(url, policy)
    except TimeoutError as exc:
        raise FetchError(_timed_out(policy), url) from exc
    except FetchError as exc:
        if exc.url is not None:
            raise
        raise FetchError(exc.cause, url) from exc.__cause__


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
                    return _parse_body(bytes(body), response.headers.get("cache-control"), url)
    except httpx.HTTPError as exc:
        raise FetchError(describe_exception(exc)) from exc
    raise FetchError(f"more than {_MAX_REDIRECTS} redirects")


def parse_discovery(fetched: Fetched, issuer: str) -> str:
    """Take ``jwks_uri`` from an OIDC discovery document whose ``issuer`` is exactly ours.

    :raises FetchError: issuer mismatch (OIDC Discovery §4.3) or a missing / non-https jwks_uri
    """
    document = fetched.document
    found = document.get("issuer")
    if found != issuer:
        # Why the value: the usual cause is a trailing slash or another host, and seeing it is
        # the fix; it is the IdP's public name, capped, never a token's.
        shown = repr(found)[:_MAX_CAUSE_CHARS] if isinstance(found, str) else "none"
        raise FetchError(f"discovery issuer {shown} is not the configured issuer {issuer!r}", fetched.url)
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str):
        raise FetchError("discovery document has no jwks_uri", fetched.url)
    try:
        check_fetch_url(jwks_uri, "jwks_uri")
    except ConfigError as exc:
        cause = "discovery jwks_uri is not https (plain http only on loopback)"
        raise FetchError(cause, fetched.url) from exc
    return jwks_uri
