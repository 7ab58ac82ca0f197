"""Property tests: whatever arrives, the only outcomes are a Refusal or a correct accept.

- ``Authenticator.authenticate`` either returns an Identity, and then an oracle written apart
  from the library (``corpus.independently_valid``) confirms signature and claims, or raises
  a ``Refusal`` with a 4xx status. Any other exception, and the ``internal_error`` 503 the
  Authenticator turns bugs into, fail the property.
- Through the ASGI app the status is never 5xx, and the app runs exactly when the answer is 200.

Bounded and reproducible: 200 derandomized examples per property, no deadline.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jwt_middleware import Identity, Refusal, RequestView
from jwt_middleware.testing import b64url, sign_raw
from tests.attacks import corpus
from tests.attacks.harness import Harness

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; open-ended search is fuzz/fuzz_verify.py's job
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
AUTH = corpus.make_authenticator()
APP = Harness(corpus.make_authenticator())
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decide(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> Identity | Refusal | None:
    """The sync decision; only Identity, None (never here: every route is protected) or a 4xx Refusal."""
    try:
        return AUTH.authenticate(RequestView("GET", "/resource", headers, query_string=query))
    except Refusal as refusal:
        assert refusal.reason != "internal_error", "a bug in the library turned into a 503"
        assert refusal.status in (400, 401, 403), (refusal.status, refusal.reason)
        return refusal


def check_accept_is_valid(outcome: Identity | Refusal | None, token: str) -> None:
    assert outcome is not None, "a protected route was allowed anonymously"
    event("accepted" if isinstance(outcome, Identity) else f"refused: {outcome.reason}")
    if isinstance(outcome, Identity):
        assert corpus.independently_valid(token), f"accepted a token the oracle rejects: {token[:200]}"


def bearer_token(value: bytes) -> str:
    return value.decode("latin-1").partition(" ")[2].lstrip(" ")  # RFC 6750 §2.1: 1*SP


# --- arbitrary Authorization headers ---------------------------------------------------------
@SETTINGS
@given(st.binary(max_size=600))
def test_arbitrary_authorization_bytes_are_refused_cleanly(value: bytes) -> None:
    outcome = decide([(b"authorization", value)])
    check_accept_is_valid(outcome, bearer_token(value))


@SETTINGS
@given(
    st.sampled_from(["Bearer ", "bearer ", "DPoP ", "Bearer  ", "Basic ", ""]),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=400),
)
def test_arbitrary_bearer_credentials_are_refused_cleanly(scheme: str, credentials: str) -> None:
    value = (scheme + credentials).encode("latin-1")
    outcome = decide([(b"authorization", value)])
    check_accept_is_valid(outcome, bearer_token(value))


# --- arbitrary token strings -----------------------------------------------------------------
segment = st.text(alphabet=B64URL + "=+/~.", max_size=120)
json_segment = st.binary(max_size=120).map(b64url)


@SETTINGS
@given(
    st.one_of(
        st.text(alphabet=B64URL + ".=+/~", max_size=400),
        st.lists(segment, min_size=1, max_size=6).map(".".join),
        st.lists(json_segment, min_size=2, max_size=5).map(".".join),
    )
)
def test_arbitrary_token_strings_are_refused_cleanly(token: str) -> None:
    for headers in (
        [(b"authorization", b"Bearer " + token.encode())],
        [(b"cookie", f"{corpus.COOKIE}={token}".encode())],
    ):
        check_accept_is_valid(decide(headers), token)


# --- arbitrary JSON signed with the real key -------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfff", "es-1", "ES256", "none", "at+jwt", "dpop+jwt", "Refresh", "api"]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
now = int(corpus.NOW)
plausible_times = st.one_of(
    st.integers(min_value=now - 200_000, max_value=now + 200_000),
    st.floats(min_value=now - 200_000, max_value=now + 200_000),
    st.sampled_from([now, now + 300, now - 31, now + 29, now + 86_400, 0, -1, 2**53, 10**20]),
)
HEADER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "alg": st.sampled_from(["ES256", "es256", "none", "HS256", "RS256", "ES384", None, ""]),
    "kid": st.sampled_from(["es-1", "ES-1", "", "../../dev/null", None, 1, ["es-1"], "es-1\x00"]),
    "typ": st.sampled_from(["at+jwt", "AT+JWT", "application/at+jwt", "JWT", "dpop+jwt", None, 1]),
    "crit": st.sampled_from([[], ["exp"], ["b64"], None]),
    "b64": st.sampled_from([False, True, None]),
    "jku": st.just("https://attacker.test/jwks"),
    "jwk": st.just(corpus.keys().attacker_es.as_dict(private=False)),
    "x5u": st.just("https://attacker.test/c.pem"),
    "cty": st.sampled_from(["JWT", "json"]),
    "zip": st.just("DEF"),
    "enc": st.just("A256GCM"),
}
CLAIM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([corpus.ISSUER, corpus.ISSUER_B, corpus.ISSUER_RS, corpus.ISSUER + "/", "x"]),
    "aud": st.sampled_from(["api", ["api"], ["x", "api"], [], ["api", None], "API", None]),
    "exp": plausible_times,
    "nbf": plausible_times,
    "iat": plausible_times,
    "sub": st.one_of(st.text(max_size=8), json_values),
    "typ": st.sampled_from(["Bearer", "Refresh", "ID", "offline", "at+jwt"]),
    "token_use": st.sampled_from(["access", "id", "refresh"]),
    "scope": json_values,
    "jti": json_values,
    "cnf": json_values,
    "auth_time": st.one_of(plausible_times, json_values),
}
DROP_OR = st.sampled_from([corpus.DROP])


@st.composite
def mutated_header(draw: st.DrawFn) -> dict[str, Any]:
    header = corpus.baseline_header()
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        name = draw(st.sampled_from(list(HEADER_VALUES)) | st.text(max_size=5))
        value = draw(DROP_OR | HEADER_VALUES.get(name, json_values) | json_values)
        if value is corpus.DROP:
            header.pop(name, None)
        else:
            header[name] = value
    return header


@st.composite
def mutated_claims(draw: st.DrawFn) -> dict[str, Any]:
    claims = corpus.baseline_claims()
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.sampled_from(list(CLAIM_VALUES)) | st.text(max_size=5))
        value = draw(DROP_OR | CLAIM_VALUES.get(name, json_values))
        if value is corpus.DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


@SETTINGS
@given(mutated_header(), mutated_claims(), st.sampled_from(["real", "real", "real", "attacker"]))
def test_signed_arbitrary_json_is_accepted_only_when_valid(
    header: dict[str, Any], claims: dict[str, Any], signer: str
) -> None:
    k = corpus.keys()
    token = sign_raw(encode(header), encode(claims), k.es if signer == "real" else k.attacker_es, "ES256")
    outcome = decide([(b"authorization", b"Bearer " + token.encode())])
    check_accept_is_valid(outcome, token)
    if isinstance(outcome, Identity):
        assert signer == "real"
        assert outcome.issuer == corpus.ISSUER
        assert outcome.subject == claims.get("sub")


@SETTINGS
@given(st.data())
def test_edited_valid_token_is_accepted_only_when_still_valid(data: st.DataObject) -> None:
    token = corpus.make()
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(token)))
        kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from(B64URL + ".=+/ "))
        if kind == "insert":
            token = token[:position] + char + token[position:]
        elif kind == "delete":
            token = token[:position] + token[position + 1 :]
        else:
            token = token[:position] + char + token[position + 1 :]
    check_accept_is_valid(decide([(b"authorization", b"Bearer " + token.encode())]), token)


# --- the same through the ASGI app -----------------------------------------------------------
header_values = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda t: b"Bearer " + t.encode(), st.text(alphabet=B64URL + ".=", max_size=300)),
    st.builds(
        lambda h, c: b"Bearer " + sign_raw(encode(h), encode(c), corpus.keys().es, "ES256").encode(),
        mutated_header(),
        mutated_claims(),
    ),
)


@SETTINGS
@given(
    authorization=st.lists(header_values, max_size=2),
    cookie=st.none() | st.text(alphabet=B64URL + '.=;" ', max_size=200),
    query=st.sampled_from(["", "access_token=x", "a=b"]),
)
def test_asgi_answers_never_5xx_and_app_runs_only_on_200(
    authorization: list[bytes], cookie: str | None, query: str
) -> None:
    APP.calls = 0
    headers: list[tuple[str, bytes]] = [("authorization", value) for value in authorization]
    if cookie is not None:
        headers.append(("cookie", f"{corpus.COOKIE}={cookie}".encode()))
    reply = APP.request(headers, query=query)
    assert reply.status in (200, 400, 401, 403), (reply.status, reply.text)
    assert APP.calls == (1 if reply.status == 200 else 0)
    if reply.status != 200:
        assert reply.header_values("www-authenticate")
    else:
        assert len(authorization) == 1 and not query.startswith("access_token")
        assert corpus.independently_valid(bearer_token(authorization[0]))
