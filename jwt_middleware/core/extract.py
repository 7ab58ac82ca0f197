"""Find exactly one access token in a request (RFC 6750 §2, RFC 9449 §7.1)."""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple
from urllib.parse import parse_qsl

from ..config import CookieSource, HeaderSource, TokenSource
from ..errors import InvalidRequest
from ..request import RequestView

__all__ = ["Extractor", "Token", "check_credentials_syntax", "token_from_authorization"]

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." /
# "_" / "~" / "+" / "/" ) *"=". Anything after the token (a second token, junk) fails the match.
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_QUERY_MARK: Final = b"access_token"

Scheme = Literal["bearer", "dpop", "cookie", "query"]


class Token(NamedTuple):
    """The credential found and where. (A NamedTuple: built on every request, and a frozen
    dataclass's ``__init__`` costs several times as much.)"""

    value: str
    scheme: Scheme
    #: the whole Authorization value when it was spelled ``Bearer <token>``: the key the
    #: verified-token cache files this token under (see :meth:`Extractor.lone_bearer`)
    raw: bytes | None = None


def _authorization(request: RequestView) -> bytes | None:
    """The one Authorization value, or None.

    :raises InvalidRequest: two Authorization headers (RFC 6750 §2: one method, one token)
    """
    value: bytes | None = None
    for name, header in request.headers:
        if name == b"authorization":
            if value is not None:
                raise InvalidRequest("multiple_authorization_headers", "Send one Authorization header")
            value = header
    return value


def _from_authorization(request: RequestView) -> Token | None:
    value = _authorization(request)
    return None if value is None else token_from_authorization(value)


def token_from_authorization(value: bytes) -> Token | None:
    """The token of one Authorization header value; None for a scheme that is not ours.

    :raises InvalidRequest: joined headers, or a malformed Bearer/DPoP credential
    """
    if b"," in value and _names_our_scheme(value):
        # A WSGI server joins repeated headers with "," (RFC 9110 §5.3); no token holds one.
        raise InvalidRequest("multiple_authorization_headers", "Send one Authorization header")
    raw: bytes | None = None
    if value.startswith(b"Bearer "):  # the usual spelling, decided without decoding the scheme
        scheme, credentials, raw = "bearer", value[7:].decode("latin-1"), value
    else:
        name_, _, credentials = value.decode("latin-1").partition(" ")
        scheme = name_.lower()
        if scheme not in ("bearer", "dpop"):
            return None  # another scheme (Basic, ...) is not ours to judge
    credentials = credentials.lstrip(" ")
    if not credentials or " " in credentials:
        raise InvalidRequest("malformed_authorization", "The Authorization header is malformed")
    return _TUPLE_NEW(Token, (credentials, scheme, raw))


def _names_our_scheme(value: bytes) -> bool:
    """Two or more ``<scheme> <credentials>`` parts, one of them Bearer or DPoP: joined headers.
    (A comma inside one token, ``Bearer a,b``, stays a malformed header.)"""
    schemes = [p.split(b" ", 1)[0].lower() for p in (part.strip() for part in value.split(b",")) if b" " in p]
    return len(schemes) > 1 and (b"bearer" in schemes or b"dpop" in schemes)


# Why not Token(...): NamedTuple's generated __new__ is Python code; this is the C one,
# on the path of every request.
_TUPLE_NEW: Final = tuple.__new__


def check_credentials_syntax(token: Token) -> None:
    """The full RFC 6750 §2.1 b64token grammar, run before a token is parsed.

    Why not in extract(): a token found in the verified-token cache passed this check when
    it was first verified, so the hot path skips it.

    :raises InvalidRequest: characters outside b64token after the scheme (junk, a second token)
    """
    if token.scheme in ("bearer", "dpop") and _B64TOKEN.fullmatch(token.value) is None:
        raise InvalidRequest("malformed_authorization", "The Authorization header is malformed")


def _from_cookie(request: RequestView, name: str) -> Token | None:
    found: set[str] = set()
    prefix = name + "="
    for header in request.header_values(b"cookie"):
        for part in header.split(";"):
            part = part.strip()
            if part.startswith(prefix):
                found.add(part[len(prefix) :].strip('"'))
    if not found:
        return None
    if len(found) > 1:
        raise InvalidRequest("multiple_tokens", "Send one access token")
    value = found.pop()
    return Token(value, "cookie") if value else None


def _query_names_token(query: bytes) -> bool:
    """An ``access_token`` parameter, however spelled (``access%5Ftoken``), and only that name:
    ``my_access_token=`` is someone else's parameter. The byte test keeps the common case cheap."""
    if _QUERY_MARK not in query and b"%" not in query:
        return False
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return any(name == "access_token" for name, _ in pairs)


def _from_query(request: RequestView) -> Token | None:
    values = [v for k, v in parse_qsl(request.query_string.decode("latin-1")) if k == "access_token"]
    if len(set(values)) > 1:
        raise InvalidRequest("multiple_tokens", "Send one access token")
    return Token(values[0], "query") if values and values[0] else None


class Extractor:
    """Looks in the configured sources, in order, and insists on one distinct token."""

    def __init__(self, sources: tuple[TokenSource, ...], *, allow_query: bool = False) -> None:
        self._sources = sources
        self._allow_query = allow_query
        #: the usual configuration (Authorization header only) takes a shorter path
        self._header_only = sources == (HeaderSource(),)

    def lone_bearer(self, request: RequestView) -> bytes | None:
        """The Authorization value, when it is spelled ``Bearer <token>`` and is the only place
        this request's token can be (header-only sources, one such header, none in the URL).

        Why: it is the verified-token cache's key for the token, so a repeated token is found
        before anything is decoded. Those bytes passed :meth:`extract` and every token check
        when they were first seen, and what :meth:`extract` makes of them depends on nothing
        else. None means: call :meth:`extract` (which raises whatever else is wrong).

        :raises InvalidRequest: two Authorization headers, as :meth:`extract` would
        """
        if not self._header_only:
            return None
        value = _authorization(request)
        if value is None or not value.startswith(b"Bearer "):
            return None
        query = request.query_string
        if query and _query_names_token(query):
            return None
        return value

    def extract(self, request: RequestView) -> Token | None:
        """The request's token, or None when it carries none.

        :raises InvalidRequest: two different tokens, a malformed Authorization header, or a
            token in the query string while that is not allowed (RFC 6750 §2.3, §3.1)
        """
        if self._header_only:
            found = _from_authorization(request)
            if request.query_string and _query_names_token(request.query_string):
                return self._query(request, found)
            return found
        found = None
        for source in self._sources:
            if isinstance(source, HeaderSource):
                token = _from_authorization(request)
            elif isinstance(source, CookieSource):
                token = _from_cookie(request, source.name)
            else:  # pragma: no cover - config rejects other types
                continue
            found = _merge(found, token)
        if _query_names_token(request.query_string):
            return self._query(request, found)
        return found

    def _query(self, request: RequestView, found: Token | None) -> Token | None:
        if not self._allow_query:
            raise InvalidRequest("token_in_query", "Access tokens are not accepted in the URL")
        return _merge(found, _from_query(request))


def _merge(found: Token | None, token: Token | None) -> Token | None:
    if token is None:
        return found
    if found is None:
        return token
    if found.value != token.value:
        raise InvalidRequest("multiple_tokens", "Send one access token")
    return found
