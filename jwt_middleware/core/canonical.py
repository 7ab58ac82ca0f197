"""The one canonical request path (RFC 3986 §5.2.4, §6.2.2).

A rule is only as good as the string it is compared with. Routers do not agree on what a path
means: Werkzeug merges ``//``, Litestar strips a trailing ``/``, none of them resolves ``..``,
and every one of them sees ``%2F`` already decoded to ``/``. So the adapters compute one
canonical path per request, and the app receives that same string (``path_normalization=
"rewrite"``) or the request is refused (``"refuse"``, the default). As Envoy's
``normalize_path``, ``merge_slashes`` and ``path_with_escaped_slashes_action=REJECT_REQUEST``:

- the input is the *decoded* path (ASGI ``path`` below ``root_path``, WSGI ``PATH_INFO`` as
  UTF-8), so unreserved escapes (``%61``) are already the characters they stand for; the
  request target as sent (``raw_path``, ``RAW_URI``/``REQUEST_URI``) is read only to refuse
  what decoding made ambiguous;
- repeated slashes are merged (``//a///b`` → ``/a/b``), then dot segments are removed
  (RFC 3986 §5.2.4: ``/a/./b`` → ``/a/b``, ``/a/../b`` → ``/b``, ``/../x`` → ``/x``);
  a trailing slash is kept;
- refused with 400 ``invalid_request``, because they have no single meaning: an encoded
  ``/`` or ``\\`` (``%2F``, ``%5C``), a backslash, NUL or any control character (C0, DEL, C1),
  a ``%`` not followed by two hex digits, bytes that are not UTF-8 (``%c0%af``, ``%ff``), and a
  path that does not start with ``/`` (``*``, an absolute-form target).

Why decoded, not raw: every framework we protect routes on the decoded path, and DPoP's
``htu`` is compared after RFC 3986 §6.2.2 normalisation, which decodes unreserved escapes too.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote, unquote_to_bytes

from ..errors import InvalidRequest
from .verified import put_bounded

__all__ = [
    "MEMO", "UNSEEN", "NonCanonicalPath", "canonical_path", "check_raw", "encode_path", "require_canonical",
]

_AMBIGUOUS: Final = "The request path is ambiguous"
#: ``ord("%")``: ``int in bytes`` skips the buffer protocol that ``b"%" in bytes`` pays for
_PERCENT: Final = 0x25
#: (decoded path → raw path) pairs found canonical: the memo of a pure function, so any entry may
#: go. Adapters probe it inline (``MEMO.get(path, UNSEEN) == raw``) before calling
#: :func:`require_canonical`, which fills it.
MEMO: Final[dict[str, bytes | None]] = {}
UNSEEN: Final = object()
_MEMO_SIZE: Final = 4096
_MEMO_PATH_CHARS: Final = 256  # longer paths are checked every time (the memo stays small)
#: a ``%`` not followed by two hex digits (RFC 3986 §2.1)
_BAD_ESCAPE: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")
#: an encoded ``/`` or ``\``: decoded, it would split or join segments the client did not
_ESCAPED_SEPARATOR: Final = re.compile(rb"%(?:2[Ff]|5[Cc])")
#: C0 controls, DEL, C1 controls, and lone surrogates (never UTF-8)
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: RFC 3986 §3.3 pchar minus pct-encoded, plus "/": what :func:`encode_path` leaves as it is
_PATH_SAFE: Final = "/!$&'()*+,;=:@-._~"


class NonCanonicalPath(InvalidRequest):
    """The path has one meaning, but is not written canonically; ``canonical`` is that form.

    Under ``path_normalization="refuse"`` it is the answer (400 ``invalid_request``); under
    ``"rewrite"`` the adapter hands the app ``canonical`` instead.
    """

    default_description = "The request path is not in canonical form"

    def __init__(self, canonical: str) -> None:
        super().__init__("non_canonical_path")
        self.canonical = canonical


def require_canonical(path: str, raw: bytes | None = None) -> str:
    """``path`` itself when it is canonical.

    Why the first lines: this runs on every request, and nearly every request asks for a path
    seen a moment ago, so a bounded memo of ``path → raw`` pairs already found canonical
    answers first (one dict probe). Otherwise a few C-level ``in`` and ``str`` checks answer
    for an ASCII path with nothing to resolve. The raw path needs a look only when it holds a
    ``%``: a raw backslash decodes to one, and raw bytes outside ASCII decode to characters
    outside ASCII, which take the slow path (it checks them).

    :param path: the decoded path (below ``root_path`` / ``SCRIPT_NAME``)
    :param raw: the percent-encoded path as the client sent it, when the server passes it on
    :raises NonCanonicalPath: the path is unambiguous but not canonical (carries the canonical form)
    :raises InvalidRequest: the path has no single meaning (see the module docstring)
    """
    if MEMO.get(path, UNSEEN) == raw:
        return path
    if raw is not None and _PERCENT in raw:
        check_raw(raw)
    if not (path.isascii() and path.isprintable() and "//" not in path and "/." not in path
            and "\\" not in path and path[:1] == "/"):
        if raw is not None and not raw.isascii():
            check_raw(raw)
        canonical = canonical_path(path)
        if canonical != path:
            raise NonCanonicalPath(canonical)
    if len(path) <= _MEMO_PATH_CHARS:
        put_bounded(MEMO, path, raw, _MEMO_SIZE)
    return path


def canonical_path(path: str, raw: bytes | None = None) -> str:
    """The canonical form of a decoded path: slashes merged, then dot segments removed.

    :raises InvalidRequest: the path (or ``raw``) has no single meaning
    """
    if raw is not None:
        check_raw(raw)
    if path[:1] != "/":
        raise InvalidRequest("relative_path", _AMBIGUOUS)
    if "\\" in path:
        raise InvalidRequest("backslash_in_path", _AMBIGUOUS)
    if _CONTROL.search(path):
        raise InvalidRequest("control_character_in_path", _AMBIGUOUS)
    return _resolve(path)


def check_raw(raw: bytes) -> None:
    """Refuse a percent-encoded path whose decoding would not have one meaning.

    :raises InvalidRequest: ``%2F``/``%5C`` (Envoy's ``REJECT_REQUEST``), a backslash, a
        malformed escape (RFC 3986 §2.1), or bytes that are not UTF-8 once decoded
        (RFC 3629 §3 also makes overlong forms such as ``%c0%af`` invalid)
    """
    if _ESCAPED_SEPARATOR.search(raw):
        raise InvalidRequest("encoded_separator_in_path", _AMBIGUOUS)
    if b"\\" in raw:
        raise InvalidRequest("backslash_in_path", _AMBIGUOUS)
    if _BAD_ESCAPE.search(raw):
        raise InvalidRequest("bad_percent_encoding", _AMBIGUOUS)
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("invalid_utf8_in_path", _AMBIGUOUS) from None


def _resolve(path: str) -> str:
    """Merge repeated slashes, then remove dot segments (RFC 3986 §5.2.4); keep a final slash.

    Why merge first: an empty segment is no segment to Werkzeug or Litestar, so ``/a//../b``
    must resolve as ``/a/../b`` (``/b``), as nginx and Go's ``path.Clean`` resolve it.
    """
    output: list[str] = []
    segments = path.split("/")
    trailing = False
    for segment in segments:
        trailing = segment in ("", ".", "..")
        if segment == "..":
            if output:
                output.pop()
        elif segment and segment != ".":
            output.append(segment)
    resolved = "/" + "/".join(output)
    if trailing and output:
        resolved += "/"
    return resolved


def encode_path(path: str) -> bytes:
    """The percent-encoded bytes of a decoded path (RFC 3986 §6.2.2: unreserved characters
    unencoded, hex digits upper-case), for ASGI ``raw_path`` and WSGI ``RAW_URI``."""
    return quote(path, safe=_PATH_SAFE).encode("ascii")
