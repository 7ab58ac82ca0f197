"""A Shared Signals receiver: the ASGI app that takes push-delivered Security Event Tokens (RFC 8935).

Why here: an identity provider that ends a session, a credential or an account says so with a
SET (RFC 8417) pushed to the receiver. ``SETReceiver`` is a mountable ASGI app; this module is
its HTTP shell only: ``POST`` with ``application/secevent+jwt``, push authentication by the
transmitter's bearer ``push_token``, the body read under ``max_bytes``, and the answer. The
work behind it is split by job:

- ``caep_set``: the pure checks of the SET (``typ``, keys pinned, ``iss``/``aud``, no top-level
  ``sub``/``exp``, ``jti``, ``iat``, events and their times) and the ``Transmitter`` config;
- ``caep_events``: the pure mapping of CAEP and RISC events and RFC 9493 subjects to cut-offs,
  at the event's own time, never the arrival time;
- ``caep_delivery``: keys, the app's subject resolver, the store, and re-delivery by ``jti``.

Answers: 202 once every cut-off holds in the store; 400 with RFC 8935 §2.4's JSON
``{"err", "description"}`` for a SET we refuse (a transmitter must not retry it); 401/403 for
push authentication; 405 for another method; 413 over ``max_bytes``; 503 with ``Retry-After``
when the store, the keys or the resolver failed, so the transmitter retries. Descriptions are
constants: nothing of the SET is ever echoed. A re-delivered SET (same ``iss`` and ``jti``)
gets 202 and changes nothing: the ``jti`` is remembered for ``remember_for`` seconds, and
cut-offs only move forward anyway, so a SET replayed after that is still harmless.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping, Sequence
from typing import Final

from .._types import Receive, Scope, Send
from ..config import KeyPolicy
from ..errors import ConfigError
from . import AsyncRevocationStore, RevocationStore
from .caep_delivery import SETDelivery, SubjectResolver
from .caep_events import (
    CREDENTIAL_CHANGE,
    RISC_ACCOUNT_DISABLED,
    RISC_ACCOUNT_PURGED,
    RISC_CREDENTIAL_COMPROMISE,
    SESSION_REVOKED_EVENT,
    TOKEN_CLAIMS_CHANGE,
)
from .caep_set import SETRefused, Transmitter, bad_set

__all__ = [
    "CREDENTIAL_CHANGE",
    "RISC_ACCOUNT_DISABLED",
    "RISC_ACCOUNT_PURGED",
    "RISC_CREDENTIAL_COMPROMISE",
    "SESSION_REVOKED_EVENT",
    "TOKEN_CLAIMS_CHANGE",
    "SETReceiver",
    "SubjectResolver",
    "Transmitter",
]

_JSON: Final = (b"content-type", b"application/json")
_DEFAULT_KEY_POLICY: Final = KeyPolicy()


class SETReceiver:
    """A mountable ASGI app receiving push-delivered SETs (RFC 8935) into a revocation store.

    Mount it at the endpoint registered with the transmitter (SSF ``delivery.endpoint_url``),
    e.g. ``Mount("/caep", SETReceiver(store, [Transmitter(...)]))``. The store's lifecycle
    (``start``/``astart``) stays the app's, as it is shared with the middleware.

    :param store: a revocation store, sync or async; cut-offs go through its ``revoke_*``
        (a sync store that does I/O is called in a worker thread). Its clock is this app's
    :param transmitters: the transmitters it trusts, at most one per ``issuer``
    :param subject_resolver: maps user identifiers in other formats than ``iss_sub``
        (``email``, ``opaque``, ...) to ``(token issuer, sub)`` pairs; sync or async. Pairs
        whose issuer is not among the transmitter's ``token_issuers`` are dropped
    :param max_bytes: largest SET accepted (413 beyond it, unread)
    :param leeway: seconds a SET's ``iat`` or an event's time may lie in the future
    :param remember_for: seconds a ``(iss, jti)`` is remembered to answer a re-delivery
    :param max_remembered: most ``jti`` remembered; past it the oldest is forgotten (a
        re-delivery after that is applied again, which changes nothing)
    :param key_policy: how remote key sets are fetched and cached
    :raises ConfigError: a misconfigured option, naming it and the fix
    """

    def __init__(
        self,
        store: RevocationStore | AsyncRevocationStore,
        transmitters: Sequence[Transmitter],
        *,
        subject_resolver: SubjectResolver | None = None,
        max_bytes: int = 64 * 1024,
        leeway: float = 60.0,
        remember_for: float = 86_400.0,
        max_remembered: int = 100_000,
        key_policy: KeyPolicy = _DEFAULT_KEY_POLICY,
    ) -> None:
        if not isinstance(store, RevocationStore | AsyncRevocationStore):
            raise ConfigError("SETReceiver.store: give a revocation store, e.g. MemoryRevocationStore()")
        if isinstance(transmitters, Transmitter) or not isinstance(transmitters, Sequence):
            raise ConfigError("SETReceiver.transmitters: give a list, e.g. transmitters=[Transmitter(...)]")
        if not transmitters or any(not isinstance(t, Transmitter) for t in transmitters):
            raise ConfigError("SETReceiver.transmitters: give at least one Transmitter(...), and only those")
        by_issuer = {t.issuer: t for t in transmitters}
        if len(by_issuer) != len(transmitters):
            raise ConfigError("SETReceiver.transmitters: each issuer may be listed once")
        if subject_resolver is not None and not callable(subject_resolver):
            raise ConfigError("SETReceiver.subject_resolver: give a function (subject_id, issuer) -> pairs")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 1024 <= max_bytes <= 1 << 24:
            raise ConfigError("SETReceiver.max_bytes: give a byte count from 1024 to 16 MiB, e.g. 65536")
        for name, value in (("leeway", leeway), ("remember_for", remember_for)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ConfigError(f"SETReceiver.{name}: give a finite, non-negative number of seconds")
        if isinstance(max_remembered, bool) or not isinstance(max_remembered, int) or max_remembered < 1:
            raise ConfigError("SETReceiver.max_remembered: give a positive count, e.g. 100_000")
        self._max_bytes = max_bytes
        self._tokens = [(t.push_token.encode(), t) for t in transmitters if t.push_token is not None]
        self._delivery = SETDelivery(
            store,
            by_issuer,
            subject_resolver=subject_resolver,
            max_bytes=max_bytes,
            leeway=float(leeway),
            remember_for=float(remember_for),
            max_remembered=max_remembered,
            key_policy=key_policy,
        )

    # --- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # a websocket: refuse the handshake
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            await self._handle(scope, receive)
        except SETRefused as refused:
            await _answer(send, refused.status, _error_body(refused), refused.headers)
            return
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def _handle(self, scope: Scope, receive: Receive) -> None:
        if scope.get("method") != "POST":
            raise SETRefused(
                405, None, "method_not_allowed", "SETs are delivered with POST", [(b"allow", b"POST")]
            )
        headers = _headers(scope)
        pushed_by = self._push_authentication(headers.get(b"authorization"))
        media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media != b"application/secevent+jwt":
            raise bad_set("wrong_content_type", "The body must be sent as application/secevent+jwt")
        body = await self._read_body(headers, receive)
        await self._delivery.deliver(body, pushed_by)

    def _push_authentication(self, authorization: bytes | None) -> Transmitter | None:
        """The transmitter whose ``push_token`` the request carries; None when it carries none.

        :raises SETRefused: 401 ``authentication_failed`` for a token that is no transmitter's
        """
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(b" ")
        token = token.strip()
        found = None
        if scheme.lower() == b"bearer" and token:
            for expected, transmitter in self._tokens:  # every one compared: no timing on which
                if hmac.compare_digest(expected, token):
                    found = transmitter
        if found is None:
            raise SETRefused(
                401,
                "authentication_failed",
                "push_token_invalid",
                "The push could not be authenticated",
                [(b"www-authenticate", b'Bearer error="invalid_token"')],
            )
        return found

    async def _read_body(self, headers: Mapping[bytes, bytes], receive: Receive) -> bytes:
        too_large = SETRefused(413, "invalid_request", "set_too_large", "The SET is too large")
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_bytes):
            raise too_large if declared.isdigit() else bad_set("bad_content_length", "Bad Content-Length")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise bad_set("client_disconnected")
            body += message.get("body", b"")
            if len(body) > self._max_bytes:
                raise too_large
            if not message.get("more_body", False):
                return bytes(body)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers by lower-case name; a repeated header keeps its first value."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(bytes(name).lower(), bytes(value))
    return found


def _error_body(refused: SETRefused) -> bytes:
    body = {"description": refused.description}
    if refused.err is not None:
        body = {"err": refused.err, **body}
    return json.dumps(body).encode()


async def _answer(send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]]) -> None:
    raw = [_JSON, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Run standalone, the app has nothing to start; the store is started by its owner."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
