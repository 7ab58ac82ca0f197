"""The app's three hooks: their types, the body a refusal hook returns, and how each is called.

``Config(claims_validator=..., identity_loader=..., on_refusal=...)``; each may be a plain
function or a coroutine function:

- ``claims_validator(claims)`` runs in the core after the standard claim checks, once per newly
  verified token (a verified-cache hit does not run it again). It returns None to accept and
  refuses by raising a :class:`~jwt_middleware.Refusal`: ``ClaimsRejected("tenant_not_allowed")``
  (401 ``invalid_token``) or ``InsufficientScope(...)`` (403).
- ``identity_loader(identity)`` runs in the adapters after an allow decision; its result becomes
  the framework's user. None is a 401 ``invalid_token`` (reason ``unknown_user``).
- ``on_refusal(refusal, request)`` shapes the body (and may add headers) of every refusal, from
  the middleware and from the framework helpers: a :class:`RefusalBody`, a JSON-able mapping,
  or None for the default ``{"error", "error_description"}``. The challenge
  (``WWW-Authenticate``), ``Retry-After``, ``DPoP-Nonce``, ``Cache-Control`` and the length
  stay the middleware's own.

Any other exception a hook raises is a bug in it: logged at ERROR (the hook's name and the
exception's type and frames, never its message, which may quote claim values) and answered
503, failing closed. So is a return value of the wrong kind (a validator returning False).

Under a sync driver (WSGI, Django's sync path, the CLI) an async hook runs to completion on an
event loop kept per thread; under ASGI a sync hook is called inline, in the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import threading
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeVar, Union

from .challenge import RESERVED_HEADERS
from .core.verified import put_bounded
from .errors import InvalidToken, Refusal, Unavailable

if TYPE_CHECKING:
    from .identity import Identity
    from .request import RequestView

__all__ = [
    "ClaimsCheck",
    "ClaimsValidator",
    "Hook",
    "IdentityLoader",
    "RefusalBody",
    "RefusalHook",
    "UserLoader",
    "prepare_hook",
    "run_to_completion",
]

logger = logging.getLogger("jwt_middleware")
T = TypeVar("T")

#: ``claims_validator(claims)``: None accepts; raising a Refusal refuses
ClaimsValidator = Callable[[Mapping[str, Any]], Awaitable[None] | None]
#: ``identity_loader(identity)``: the app's user for a verified Identity; None: no such user
IdentityLoader = Callable[["Identity"], object | Awaitable[object]]
_Shaped = Union["RefusalBody", Mapping[str, Any], None]
#: ``on_refusal(refusal, request)``: the body of the answer; None: the default body
RefusalHook = Callable[[Refusal, "RequestView | None"], _Shaped | Awaitable[_Shaped]]

#: RFC 9110 §5.6.2 token (a header name)
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: a header value: visible latin-1 text, spaces and tabs (RFC 9110 §5.5); no CR, LF or NUL
_FIELD_VALUE: Final = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
#: RFC 9110 §8.3.1: type "/" subtype, then parameters on the same line
_MEDIA_TYPE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[\t\x20-\x7e]*)?")
UNKNOWN_USER: Final = "The access token does not name a known user"
#: one loaded user per Identity at most this many Identities at once
_USERS_REMEMBERED: Final = 4096


@dataclass(frozen=True, slots=True)
class RefusalBody:
    """The body an ``on_refusal`` hook gives a refusal, and headers to add to it.

    :param body: a JSON-able mapping (encoded compactly) or the body's bytes as they are
    :param content_type: the body's media type
    :param headers: extra response headers (e.g. ``{"Link": "<...>; rel=help"}``)
    :raises ValueError: a body that is not JSON-able, or a header the middleware sets itself
        (``WWW-Authenticate``, ``Retry-After``, ``DPoP-Nonce``, ``Cache-Control``,
        ``Content-Length``; ``Content-Type`` is ``content_type``), or a name or value that is
        not one header line (CR, LF, NUL, non-latin-1: header injection)
    """

    body: Mapping[str, Any] | bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the encoded body, as sent
    payload: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.body, bytes):
            payload = self.body
        elif isinstance(self.body, Mapping):
            try:
                payload = json.dumps(self.body, separators=(",", ":")).encode()
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"RefusalBody.body: not JSON-able ({type(exc).__name__}); "
                    "give str, numbers, lists and dicts, or bytes"
                ) from None
        else:
            raise ValueError(f"RefusalBody.body: {type(self.body).__name__} given; give a mapping or bytes")
        if not isinstance(self.content_type, str) or _MEDIA_TYPE.fullmatch(self.content_type) is None:
            raise ValueError(f"RefusalBody.content_type: {self.content_type!r} is not a media type")
        headers = tuple(_checked_header(name, value) for name, value in dict(self.headers).items())
        object.__setattr__(self, "headers", MappingProxyType(dict(headers)))
        object.__setattr__(self, "payload", payload)


def _checked_header(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise ValueError(f"RefusalBody.headers: {name!r} is not a header name")
    if name.lower() in RESERVED_HEADERS:
        fix = "use content_type=" if name.lower() == "content-type" else "the middleware sets it"
        raise ValueError(f"RefusalBody.headers: {name!r} cannot be set by on_refusal ({fix})")
    if not isinstance(value, str) or _FIELD_VALUE.fullmatch(value) is None:
        raise ValueError(f"RefusalBody.headers[{name!r}]: not one line of latin-1 text (no CR, LF or NUL)")
    return name.lower(), value


@dataclass(frozen=True, slots=True)
class Hook:
    """One configured hook: the callable, the option that named it (for logs), and whether it
    is a coroutine function (decided once, when the Authenticator is built)."""

    name: str
    fn: Callable[..., Any]
    is_async: bool

    def call(self, *args: Any) -> Any:
        """The hook's result, an async one's run to completion (sync drivers).

        :raises Refusal: what the hook raised, or :class:`Unavailable` for any other exception
        """
        result = self.start(*args)
        return self.finish(result) if self.is_async or inspect.isawaitable(result) else result

    async def acall(self, *args: Any) -> Any:
        """The hook's result, awaited when it is awaitable (ASGI); a sync hook runs inline."""
        result = self.start(*args)
        return await self.afinish(result) if self.is_async or inspect.isawaitable(result) else result

    def start(self, *args: Any) -> Any:
        """Call the hook without waiting for it: its result, or what is left to await (an async
        hook's coroutine, or the awaitable a sync one returned).

        :raises Refusal: what a sync hook raised, or :class:`Unavailable` for any other exception
        """
        try:
            return self.fn(*args)
        except Refusal:
            raise
        except Exception as exc:
            raise hook_failed(self.name, exc) from None

    def finish(self, started: Awaitable[Any]) -> Any:
        """:meth:`start`'s awaitable run to completion (sync drivers), its exceptions mapped."""
        try:
            return run_to_completion(started)
        except Refusal:
            raise
        except Exception as exc:
            raise hook_failed(self.name, exc) from None

    async def afinish(self, started: Awaitable[Any]) -> Any:
        """:meth:`start`'s awaitable awaited (ASGI), its exceptions mapped."""
        try:
            return await started
        except Refusal:
            raise
        except Exception as exc:
            raise hook_failed(self.name, exc) from None


class ClaimsCheck:
    """The ``claims_validator`` as the core calls it: inline first, awaited by a driver if need be.

    Why in two halves: the core never awaits (it is sans-I/O), so :meth:`__call__` runs a sync
    validator to its end right there (no generator on the hot path) and hands back only what is
    left to await, which the pipeline yields as a ``ValidateClaims`` effect for the driver.
    """

    __slots__ = ("hook",)

    def __init__(self, hook: Hook) -> None:
        self.hook = hook

    def __call__(self, claims: Mapping[str, Any]) -> Awaitable[Any] | None:
        """None: accepted; else the awaitable to finish with :meth:`finish` / :meth:`afinish`.

        :raises Refusal: the validator's refusal, or 503 for a bug (or a result that is not None)
        """
        result = self.hook.start(claims)
        if result is None or self.hook.is_async or inspect.isawaitable(result):
            return result  # type: ignore[no-any-return]
        raise wrong_result(self.hook.name, result, _ACCEPT_OR_RAISE)

    def finish(self, pending: Awaitable[Any]) -> None:
        self._accepted(self.hook.finish(pending))

    async def afinish(self, pending: Awaitable[Any]) -> None:
        self._accepted(await self.hook.afinish(pending))

    def _accepted(self, result: object) -> None:
        if result is not None:
            raise wrong_result(self.hook.name, result, _ACCEPT_OR_RAISE)


_ACCEPT_OR_RAISE: Final = "return None to accept, raise a Refusal (ClaimsRejected) to refuse"


def prepare_hook(name: str, fn: Callable[..., Any] | None) -> Hook | None:
    """The :class:`Hook` of a configured callable (None: not configured)."""
    if fn is None:
        return None
    # a class instance whose __call__ is ``async def`` is a coroutine function in all but name
    method = type(fn).__call__ if not inspect.isfunction(fn) and not inspect.ismethod(fn) else None
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(method)
    return Hook(name, fn, is_async)


def hook_failed(name: str, exc: BaseException) -> Unavailable:
    """A hook's own bug: log it (type and frames only) and answer 503, never a 500 or an accept."""
    # Why no message and no exc_info: the message of an exception raised over claims may quote
    # their values (a KeyError names the key, a ValueError the value); the frames locate the bug.
    frames = " <- ".join(
        f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(traceback.extract_tb(exc.__traceback__))
    )
    logger.error("hook %s raised %s at %s; answering 503", name, type(exc).__name__, frames or "?")
    return Unavailable("hook_error", retry_after=1)


def wrong_result(name: str, value: object, expected: str) -> Unavailable:
    """A hook that returned a kind of value its contract has no meaning for: a bug, 503."""
    logger.error("hook %s returned a %s: %s; answering 503", name, type(value).__name__, expected)
    return Unavailable("hook_error", retry_after=1)


class UserLoader:
    """The ``identity_loader`` hook with its memo: one user per verified Identity for ``ttl`` seconds.

    Why keyed by the Identity object: the verified-token cache hands every request with one token
    the same Identity, and a different token (or the same one verified again) gets another, so a
    user is never reused across tokens. The entry holds the Identity, so its ``id`` cannot be
    reused while the entry lives.
    """

    def __init__(self, hook: Hook, ttl: float, clock: Callable[[], float]) -> None:
        self.hook = hook
        self.ttl = ttl
        self._clock = clock
        self._users: dict[int, tuple[Identity, object, float]] = {}

    def load(self, identity: Identity) -> object:
        """:raises Refusal: the loader's refusal, ``unknown_user`` for None, 503 for a bug"""
        found = self._remembered(identity)
        if found is not None:
            return found
        return self._remember(identity, self.hook.call(identity))

    async def aload(self, identity: Identity) -> object:
        found = self._remembered(identity)
        if found is not None:
            return found
        return self._remember(identity, await self.hook.acall(identity))

    def _remembered(self, identity: Identity) -> object | None:
        if not self.ttl:
            return None
        entry = self._users.get(id(identity))
        if entry is None or entry[0] is not identity or self._clock() >= entry[2]:
            return None
        return entry[1]

    def _remember(self, identity: Identity, user: object) -> object:
        if user is None:
            raise InvalidToken("unknown_user", UNKNOWN_USER)
        if self.ttl:
            until = self._clock() + self.ttl
            put_bounded(self._users, id(identity), (identity, user, until), _USERS_REMEMBERED)
        return user


def shaped_body(name: str, result: object) -> RefusalBody | None:
    """What ``on_refusal`` returned, as a :class:`RefusalBody` (None: the default body).

    :raises Unavailable: a value of another kind, or a mapping that is not JSON-able
    """
    if result is None or isinstance(result, RefusalBody):
        return result
    if isinstance(result, Mapping):
        try:
            return RefusalBody(result)
        except ValueError as exc:
            raise hook_failed(name, exc) from None
    raise wrong_result(name, result, "return a RefusalBody, a JSON-able mapping or None")


_threads: Final = threading.local()
_helper_lock: Final = threading.Lock()
_helper_pool: ThreadPoolExecutor | None = None


def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on this thread's own event loop (made at its first use, then kept).

    Why kept, not ``asyncio.run`` per call: a new loop per request costs a selector and a
    thread-safety handshake each time, and a hook may cache objects bound to its loop.
    Called where a loop already runs in this thread (a sync API used from async code), the
    awaitable runs on a helper thread's loop instead, and this thread waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(_coroutine(awaitable))
    finished: T = _helper().submit(_run_here, awaitable).result()
    return finished


def _run_here(awaitable: Awaitable[Any]) -> Any:
    return _thread_loop().run_until_complete(_coroutine(awaitable))


def _thread_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop | None = getattr(_threads, "loop", None)
    if loop is None or loop.is_closed():
        loop = _threads.loop = asyncio.new_event_loop()
    return loop


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _coroutine(awaitable: Awaitable[T]) -> Coroutine[Any, Any, T]:
    return awaitable if inspect.iscoroutine(awaitable) else _awaited(awaitable)


def _helper() -> ThreadPoolExecutor:
    """The threads that run an awaitable for a thread whose own loop is busy (made at first use)."""
    global _helper_pool
    with _helper_lock:
        if _helper_pool is None:
            _helper_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jwt_middleware-hook")
        return _helper_pool
