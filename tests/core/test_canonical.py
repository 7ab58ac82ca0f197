"""The one canonical request path: one table of inputs → canonical form or refusal."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwt_middleware import InvalidRequest
from jwt_middleware.core.canonical import (
    MEMO,
    UNSEEN,
    NonCanonicalPath,
    canonical_path,
    check_raw,
    encode_path,
    require_canonical,
)

#: (raw path as the client sent it, canonical path); the decoded path is unquote(raw), as servers decode
CANONICAL = [
    ("/", "/"),
    ("/health", "/health"),
    ("/admin/", "/admin/"),  # a trailing slash is kept: the matcher treats /admin and /admin/ alike
    ("/.well-known/jwks.json", "/.well-known/jwks.json"),
    ("/a.b/..c/...", "/a.b/..c/..."),
    ("//admin", "/admin"),
    ("///admin/users/7", "/admin/users/7"),
    ("/admin//panel", "/admin/panel"),
    ("/admin///", "/admin/"),
    ("/a/./b", "/a/b"),
    ("/a/../b", "/b"),
    ("/admin/../public", "/public"),
    ("/../x", "/x"),
    ("/..", "/"),
    ("/.", "/"),
    ("/a/b/..", "/a/"),
    ("/a/b/.", "/a/b/"),
    ("/a//../b", "/b"),  # slashes merged first, as nginx and Go's path.Clean resolve it
    ("/%2e%2e/admin", "/admin"),
    ("/%2E%2e/%2e/admin", "/admin"),
    ("/.%2e/admin", "/admin"),
    ("/%61dmin", "/admin"),  # an unreserved escape is the character it stands for
    ("/caf%C3%A9", "/café"),
    ("/a%20b", "/a b"),
    ("/a%25zz", "/a%zz"),  # an encoded '%' is a literal '%' in the decoded path
    ("/items/%E2%82%AC", "/items/€"),
]

#: (raw path, reason): no single meaning, refused in both modes
REFUSED = [
    ("/admin%2Fpanel", "encoded_separator_in_path"),
    ("/admin%2fpanel", "encoded_separator_in_path"),
    ("/%2e%2e%2fadmin", "encoded_separator_in_path"),
    ("/admin%5Cpanel", "encoded_separator_in_path"),
    ("/admin%5cpanel", "encoded_separator_in_path"),
    ("/admin\\panel", "backslash_in_path"),
    ("/admin%00", "control_character_in_path"),
    ("/admin%0a", "control_character_in_path"),
    ("/admin%09x", "control_character_in_path"),
    ("/admin%7f", "control_character_in_path"),
    ("/admin%C2%85", "control_character_in_path"),  # C1 NEL
    ("/admin%zz", "bad_percent_encoding"),
    ("/admin%4", "bad_percent_encoding"),
    ("/admin%", "bad_percent_encoding"),
    ("/%c0%af", "invalid_utf8_in_path"),  # overlong '/', RFC 3629 §3
    ("/%ff", "invalid_utf8_in_path"),
    ("/%e2%82", "invalid_utf8_in_path"),  # truncated sequence
    ("/%ed%a0%80", "invalid_utf8_in_path"),  # a UTF-16 surrogate
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL, ids=[r for r, _ in CANONICAL])
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonical_path(unquote(raw), raw.encode()) == expected


@pytest.mark.parametrize(("raw", "expected"), CANONICAL, ids=[r for r, _ in CANONICAL])
def test_require_canonical_passes_only_the_canonical_form(raw: str, expected: str) -> None:
    decoded = unquote(raw)
    if decoded == expected:
        assert require_canonical(decoded, raw.encode()) is decoded
    else:
        with pytest.raises(NonCanonicalPath) as caught:
            require_canonical(decoded, raw.encode())
        assert caught.value.canonical == expected
        assert caught.value.status == 400 and caught.value.error == "invalid_request"
        assert caught.value.reason == "non_canonical_path"
        assert raw not in caught.value.description  # constant text, never the path


@pytest.mark.parametrize(("raw", "reason"), REFUSED, ids=[r for r, _ in REFUSED])
def test_ambiguous_paths_are_refused(raw: str, reason: str) -> None:
    decoded = unquote(raw, errors="replace")  # what uvicorn puts in scope["path"]
    for call in (canonical_path, require_canonical):
        with pytest.raises(InvalidRequest) as caught:
            call(decoded, raw.encode())
        assert not isinstance(caught.value, NonCanonicalPath)
        assert caught.value.reason == reason and caught.value.status == 400


@pytest.mark.parametrize("decoded", ["/a\x00b", "/a\nb", "/a\\b", "/\ud800", "*", "", "admin", "http://x/a"])
def test_decoded_path_alone_is_refused_when_ambiguous(decoded: str) -> None:
    """Without a raw path (an old server), the decoded path is still checked."""
    with pytest.raises(InvalidRequest) as caught:
        require_canonical(decoded)
    assert not isinstance(caught.value, NonCanonicalPath)


@pytest.mark.parametrize("raw", [b"/a\\b", b"/a%41\\b", b"/a%2fb", b"/a%5cb", b"/a%g0", b"/%ff"])
def test_check_raw_refuses_on_its_own(raw: bytes) -> None:
    """The raw check does not lean on the decoded one: a raw backslash is refused by itself."""
    with pytest.raises(InvalidRequest):
        check_raw(raw)


def test_raw_path_outside_ascii_must_be_utf8() -> None:
    with pytest.raises(InvalidRequest):
        require_canonical("/caf\ufffd", "/caf\xe9".encode("latin-1"))
    assert require_canonical("/café", "/café".encode()) == "/café"


@pytest.mark.parametrize(
    ("path", "raw"),
    [("/a b", b"/a%20b"), ("/café", b"/caf%C3%A9"), ("/a%zz", b"/a%25zz"), ("/q?x#y", b"/q%3Fx%23y"),
     ("/x:y@z;a=b,c", b"/x:y@z;a=b,c"), ("/~user/-._", b"/~user/-._")],
)
def test_encode_path_is_rfc3986_normal_form(path: str, raw: bytes) -> None:
    """Unreserved characters stay as they are, hex digits upper-case (RFC 3986 §6.2.2)."""
    assert encode_path(path) == raw
    assert require_canonical(path, encode_path(path)) == path


SEGMENT = st.sampled_from(["", ".", "..", "a", "b", "%2e", "%2E%2e", "%61", "c%20d", "caf%C3%A9"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(SEGMENT, max_size=8), st.booleans())
def test_canonical_form_is_idempotent_and_accepted_as_is(segments: list[str], trailing: bool) -> None:
    raw = "/" + "/".join(segments) + ("/" if trailing else "")
    canonical = canonical_path(unquote(raw), raw.encode())
    assert canonical.startswith("/") and "//" not in canonical
    assert not any(part in (".", "..") for part in canonical.split("/"))
    assert canonical_path(canonical) == canonical
    # what the rewrite hands the app is accepted as it is, raw path included
    assert require_canonical(canonical, encode_path(canonical)) is canonical


def test_memo_answers_only_for_the_same_raw_path() -> None:
    """A path found canonical once is remembered with its raw form: the same decoded path
    with another raw form (an encoded '/' this time) is checked again and refused."""
    path = "/memo/admin/panel"
    assert require_canonical(path, b"/memo/admin/panel") is path
    assert MEMO[path] == b"/memo/admin/panel"
    for raw in (b"/memo/admin%2Fpanel", b"/memo/admin%2fpanel", b"/memo%2Fadmin/panel"):
        with pytest.raises(InvalidRequest) as caught:
            require_canonical(path, raw)
        assert caught.value.reason == "encoded_separator_in_path"
    assert require_canonical(path, None) is path  # no raw given: the decoded checks alone
    assert MEMO.get(path, UNSEEN) is None


def test_memo_never_holds_a_non_canonical_or_long_path() -> None:
    for path in ("//memo", "/memo/../x", "/memo\x00"):
        with pytest.raises(InvalidRequest):
            require_canonical(path, path.encode())
        assert path not in MEMO
    long = "/" + "a" * 300
    assert require_canonical(long) is long and long not in MEMO
