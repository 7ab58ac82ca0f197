"""Registered claims (RFC 7519 §4.1, RFC 9068 §4): unit checks with a number for ``now``,
then the same rules end to end on a FakeClock (never a sleep)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, ConfigError, InvalidToken, Issuer, StaticKeys
from jwt_middleware.core.claims import ClaimPolicy, check_audience, check_claims, check_times, time_claim
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks, sign_raw

from ._support import ISSUER, NOW, assert_invalid_token, bearer, decide, make_auth, refuse, request

LEEWAY = 30.0
POLICY = ClaimPolicy(issuer=ISSUER, audiences=frozenset({"api"}), leeway=LEEWAY, max_lifetime=86400.0)


def times(now: float = NOW, policy: ClaimPolicy = POLICY, **claims: Any) -> None:
    check_times(claims, policy, now)


def reason_of(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        call(*args, **kwargs)
    return caught.value.reason


# --- exp --------------------------------------------------------------------------------------
def test_rejects_token_without_exp() -> None:
    assert reason_of(times, iat=NOW) == "missing_exp"
    times(policy=ClaimPolicy(ISSUER, frozenset({"api"}), LEEWAY, require_exp=False), iat=NOW)


def test_exp_boundary_with_leeway() -> None:
    exp = NOW + 300
    times(now=exp + LEEWAY - 1, exp=exp, iat=NOW)
    times(now=exp + LEEWAY - 0.001, exp=exp, iat=NOW)
    assert reason_of(times, now=exp + LEEWAY, exp=exp, iat=NOW) == "token_expired"
    assert reason_of(times, now=exp + 10_000, exp=exp, iat=NOW) == "token_expired"


def test_exp_boundary_without_leeway_refuses_at_exp() -> None:
    """RFC 7519 §4.1.4: "on or after" the expiry the token MUST NOT be accepted."""
    strict = ClaimPolicy(ISSUER, frozenset({"api"}), 0.0)
    times(now=NOW + 299, policy=strict, exp=NOW + 300)
    assert reason_of(times, now=NOW + 300, policy=strict, exp=NOW + 300) == "token_expired"


# --- nbf and iat --------------------------------------------------------------------------------
def test_nbf_in_the_future_beyond_leeway_is_refused() -> None:
    times(exp=NOW + 300, nbf=NOW + LEEWAY)
    assert reason_of(times, exp=NOW + 300, nbf=NOW + LEEWAY + 1) == "token_not_yet_valid"


def test_iat_in_the_future_beyond_leeway_is_refused() -> None:
    times(exp=NOW + 300, iat=NOW + LEEWAY)
    assert reason_of(times, exp=NOW + 300, iat=NOW + LEEWAY + 1) == "iat_in_future"


@pytest.mark.parametrize("exp", [NOW, NOW - 1], ids=["exp-equals-iat", "exp-before-iat"])
def test_rejects_exp_not_after_iat(exp: float) -> None:
    assert reason_of(times, exp=exp, iat=NOW) == "exp_before_iat"


def test_require_iat() -> None:
    policy = ClaimPolicy(ISSUER, frozenset({"api"}), LEEWAY, require_iat=True)
    assert reason_of(times, policy=policy, exp=NOW + 300) == "missing_iat"


def test_max_age_refuses_old_tokens_and_tokens_without_iat() -> None:
    policy = ClaimPolicy(ISSUER, frozenset({"api"}), LEEWAY, max_age=600.0)
    times(now=NOW + 600 + LEEWAY, policy=policy, iat=NOW, exp=NOW + 3600)
    assert reason_of(times, now=NOW + 600 + LEEWAY + 1, policy=policy, iat=NOW, exp=NOW + 3600) == "token_too_old"
    assert reason_of(times, policy=policy, exp=NOW + 300) == "missing_iat"


def test_max_lifetime_defaults_to_one_day() -> None:
    config = Config(issuers=[Issuer(ISSUER, ("ES256",), keys=StaticKeys({"keys": []}))], audience="api")
    assert config.max_lifetime == 86400.0


def test_rejects_token_living_longer_than_max_lifetime() -> None:
    times(iat=NOW, exp=NOW + 86400)
    assert reason_of(times, iat=NOW, exp=NOW + 86400 + LEEWAY + 1) == "lifetime_too_long"
    assert reason_of(times, iat=NOW, exp=NOW + 10 * 365 * 86400) == "lifetime_too_long"
    # without iat the lifetime counts from now
    assert reason_of(times, exp=NOW + 2 * 86400) == "lifetime_too_long"


@pytest.mark.parametrize("now", [NOW, NOW + 100, NOW - LEEWAY], ids=["at-iat", "later", "our-clock-behind"])
def test_leeway_does_not_lengthen_a_lifetime_both_ends_of_which_come_from_the_token(now: float) -> None:
    """exp - iat is the issuer's own arithmetic: clock skew between hosts does not enter it."""
    times(now=now, iat=NOW, exp=NOW + 86400)
    assert reason_of(times, now=now, iat=NOW, exp=NOW + 86400 + 1) == "lifetime_too_long"
    assert reason_of(times, now=now, iat=NOW, exp=NOW + 86400 + LEEWAY) == "lifetime_too_long"


def test_without_iat_the_lifetime_from_now_allows_the_clock_skew() -> None:
    """exp - now mixes the issuer's clock and ours, so there the leeway applies (Config.max_lifetime)."""
    times(exp=NOW + 86400 + LEEWAY)
    assert reason_of(times, exp=NOW + 86400 + LEEWAY + 1) == "lifetime_too_long"


def test_max_lifetime_boundary_end_to_end(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, max_lifetime=3600.0, verified_cache_size=0)
    assert decide(auth, request(bearer(mint(es256_key, now=clock.now, lifetime=3600)))) is not None
    rendered = refuse(auth, request(bearer(mint(es256_key, now=clock.now, lifetime=3601))))
    assert_invalid_token(rendered)
    assert rendered.reason == "lifetime_too_long"


# --- NumericDate types -------------------------------------------------------------------------------
BAD_TIMES = {
    "string": str(int(NOW) + 300),
    "true": True,
    "false": False,
    "null": None,
    "nan": math.nan,
    "infinity": math.inf,
    "minus-infinity": -math.inf,
    "negative": -1,
    "above-2-53": 2**53 + 1,
    "huge-int": 10**30,
    "list": [int(NOW) + 300],
    "object": {"$date": int(NOW) + 300},
}


@pytest.mark.parametrize("name", ["exp", "nbf", "iat", "auth_time"])
@pytest.mark.parametrize("value", list(BAD_TIMES.values()), ids=list(BAD_TIMES))
def test_rejects_time_claim_of_wrong_type(name: str, value: Any) -> None:
    claims = {"iss": ISSUER, "aud": "api", "iat": NOW, "exp": NOW + 300, name: value}
    assert reason_of(check_claims, claims, POLICY, NOW) == f"invalid_{name}"


def test_time_claim_accepts_integers_and_finite_floats() -> None:
    assert time_claim({"exp": 1800000300}, "exp") == 1800000300.0
    assert time_claim({"exp": 1800000300.5}, "exp") == 1800000300.5
    assert time_claim({}, "exp") is None


RAW_TIMES = {"string": '"1800000300"', "true": "true", "float-overflow": "1e400", "negative": "-5",
             "above-2-53": "9007199254740993", "null": "null"}


@pytest.mark.parametrize("raw", list(RAW_TIMES.values()), ids=list(RAW_TIMES))
def test_rejects_signed_token_with_bad_exp_end_to_end(static_auth: Authenticator, es256_key: Key, raw: str) -> None:
    body = json.dumps({"iss": ISSUER, "aud": "api", "sub": "u", "iat": int(NOW)})[:-1] + f', "exp": {raw}}}'
    token = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"}, body.encode(), es256_key, "ES256")
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "invalid_exp"


# --- iss, aud, sub and required claims ----------------------------------------------------------------
@pytest.mark.parametrize("iss", [None, "https://other.test", ISSUER + "/", ISSUER.upper(), [ISSUER], 1])
def test_check_claims_refuses_other_issuer(iss: Any) -> None:
    claims = {"iss": iss, "aud": "api", "exp": NOW + 300}
    assert reason_of(check_claims, claims, POLICY, NOW) == "invalid_issuer"


@pytest.mark.parametrize(
    "iss", [ISSUER + "/", "https://ISSUER.test", " " + ISSUER, [ISSUER], {"iss": ISSUER}, 7, None],
    ids=["trailing-slash", "case", "leading-space", "array", "object", "number", "null"],
)
def test_rejects_token_from_untrusted_or_non_string_issuer(
    static_auth: Authenticator, es256_key: Key, iss: Any
) -> None:
    token = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"},
                     {"iss": iss, "aud": "api", "sub": "u", "iat": int(NOW), "exp": int(NOW) + 300},
                     es256_key, "ES256")
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "unknown_issuer"


def test_rejects_token_without_issuer(static_auth: Authenticator, es256_key: Key) -> None:
    token = mint(es256_key, {"iss": None}, now=NOW)
    assert refuse(static_auth, request(bearer(token))).reason == "unknown_issuer"


BAD_AUDIENCES = {
    "missing": None,
    "other": "other-api",
    "case": "API",
    "array-without-ours": ["a", "b"],
    "array-with-non-string": ["api", 1],
    "array-with-null": ["api", None],
    "nested-array": [["api"]],
    "empty-array": [],
    "empty-string": "",
    "object": {"api": True},
    "number": 1,
}


@pytest.mark.parametrize("aud", list(BAD_AUDIENCES.values()), ids=list(BAD_AUDIENCES))
def test_rejects_wrong_audience(static_auth: Authenticator, es256_key: Key, aud: Any) -> None:
    assert reason_of(check_audience, {"aud": aud} if aud is not None else {}, frozenset({"api"})) == (
        "invalid_audience"
    )
    token = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"},
                     {k: v for k, v in {"iss": ISSUER, "aud": aud, "sub": "u", "iat": int(NOW),
                                         "exp": int(NOW) + 300}.items() if v is not None},
                     es256_key, "ES256")
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "invalid_audience"


def test_audience_array_holding_ours_is_accepted(static_auth: Authenticator, es256_key: Key) -> None:
    assert decide(static_auth, request(bearer(mint(es256_key, audience=["other", "api"], now=NOW)))) is not None


@pytest.mark.parametrize(
    "claim",
    [{"sub": 1}, {"sub": ["user-1"]}, {"sub": None}, {"sub": {"id": 1}}, {"jti": 5}, {"scope": ["read"]},
     {"scope": None}, {"scp": [1]}, {"scp": 3}, {"acr": 1}, {"amr": "pwd"}, {"amr": [1]}, {"client_id": 9},
     {"cnf": "x"}, {"cnf": {"jkt": 1}}],
    ids=lambda c: "-".join(f"{k}={json.dumps(v)}" for k, v in c.items()),
)
def test_rejects_claims_of_the_wrong_type(static_auth: Authenticator, es256_key: Key, claim: dict[str, Any]) -> None:
    name = next(iter(claim))
    token = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"},
                     {"iss": ISSUER, "aud": "api", "sub": "u", "iat": int(NOW), "exp": int(NOW) + 300, **claim},
                     es256_key, "ES256")
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == f"invalid_{name}"


BLANKS = {"empty": "", "space": " ", "spaces": "   ", "tab-newline": "\t\n", "nbsp": "\u00a0",
          "ideographic-space": "\u3000", "line-separator": "\u2028"}


@pytest.mark.parametrize("name", ["sub", "jti", "client_id"])
@pytest.mark.parametrize("value", list(BLANKS.values()), ids=list(BLANKS))
def test_rejects_empty_or_whitespace_identifier_claims(
    static_auth: Authenticator, es256_key: Key, name: str, value: str
) -> None:
    """An empty ``sub`` names nobody; an empty ``jti`` or ``client_id`` identifies nothing."""
    assert reason_of(check_claims, {"iss": ISSUER, "aud": "api", "exp": NOW + 300, name: value}, POLICY, NOW) == (
        f"invalid_{name}"
    )
    token = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"},
                     {"iss": ISSUER, "aud": "api", "sub": "u", "iat": int(NOW), "exp": int(NOW) + 300, name: value},
                     es256_key, "ES256")
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == f"invalid_{name}"
    assert rendered.json["error_description"] == "A claim of the access token is empty"


@pytest.mark.parametrize("name", ["sub", "jti", "client_id"])
def test_identifier_claims_with_inner_space_are_accepted(static_auth: Authenticator, es256_key: Key, name: str) -> None:
    token = mint(es256_key, {name: "a b"}, now=NOW)
    identity = decide(static_auth, request(bearer(token)))
    assert identity is not None and identity.claims[name] == "a b"


@pytest.mark.parametrize("iss", ["", " ", "\t"], ids=["empty", "space", "tab"])
def test_rejects_empty_or_whitespace_issuer(static_auth: Authenticator, es256_key: Key, iss: str) -> None:
    """A blank ``iss`` can match no issuer: the configuration refuses blank issuers."""
    with pytest.raises(ConfigError, match=r"Issuer\.issuer"):
        Issuer(iss, ("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    rendered = refuse(static_auth, request(bearer(mint(es256_key, {"iss": iss}, now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "unknown_issuer"
    assert reason_of(check_claims, {"iss": iss, "aud": "api", "exp": NOW + 300}, POLICY, NOW) == "invalid_issuer"


@pytest.mark.parametrize("value", ["", "  "], ids=["empty", "spaces"])
def test_blank_string_does_not_satisfy_a_required_claim(es256_key: Key, clock: FakeClock, value: str) -> None:
    auth = make_auth(es256_key, clock, issuer_options={"required_claims": ("tenant",)})
    assert decide(auth, request(bearer(mint(es256_key, {"tenant": "t1"}, now=NOW)))) is not None
    assert refuse(auth, request(bearer(mint(es256_key, {"tenant": value}, now=NOW)))).reason == "missing_claim"


def test_rejects_token_missing_a_required_claim(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, issuer_options={"required_claims": ("tenant", "sub")})
    assert decide(auth, request(bearer(mint(es256_key, {"tenant": "t1"}, now=NOW)))) is not None
    assert refuse(auth, request(bearer(mint(es256_key, now=NOW)))).reason == "missing_claim"
    explicit_null = sign_raw({"alg": "ES256", "typ": "at+jwt", "kid": "es-1"},
                             {"iss": ISSUER, "aud": "api", "sub": "u", "exp": int(NOW) + 60, "tenant": None},
                             es256_key, "ES256")
    assert refuse(auth, request(bearer(explicit_null))).reason == "missing_claim"


# --- several issuers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def key_b() -> Key:
    return make_key("ES256", kid="b-1")


@pytest.fixture
def two_issuers(es256_key: Key, key_b: Key, clock: FakeClock) -> Authenticator:
    return Authenticator(Config(
        issuers=[
            Issuer(ISSUER, ("ES256",), keys=StaticKeys(public_jwks(es256_key)), audiences=("api-a",)),
            Issuer("https://b.test", ("ES256",), keys=StaticKeys(public_jwks(key_b)), audiences=("api-b",)),
        ],
        audience="shared",
        clock=clock,
    ))


def test_each_issuer_has_its_own_audience(two_issuers: Authenticator, es256_key: Key, key_b: Key) -> None:
    assert decide(two_issuers, request(bearer(mint(es256_key, audience="api-a", now=NOW)))) is not None
    b_token = mint(key_b, issuer="https://b.test", audience="api-b", now=NOW)
    assert decide(two_issuers, request(bearer(b_token))) is not None


@pytest.mark.parametrize("aud", ["api-b", "shared"])
def test_rejects_token_carrying_another_issuers_audience(two_issuers: Authenticator, es256_key: Key, aud: str) -> None:
    rendered = refuse(two_issuers, request(bearer(mint(es256_key, audience=aud, now=NOW))))
    assert rendered.reason == "invalid_audience"


def test_rejects_token_claiming_issuer_b_signed_with_issuer_a_key(
    two_issuers: Authenticator, es256_key: Key
) -> None:
    """The iss picks the key set: A's key cannot vouch for B's tokens, even reusing B's kid."""
    for kid in ("es-1", "b-1", False):
        token = mint(es256_key, kid=kid, issuer="https://b.test", audience="api-b", now=NOW)
        assert refuse(two_issuers, request(bearer(token))).reason in ("unknown_kid", "bad_signature")


# --- end to end on a FakeClock ----------------------------------------------------------------------------
def test_expiry_boundary_end_to_end(es256_key: Key, clock: FakeClock) -> None:
    token = mint(es256_key, now=clock.now, lifetime=300)
    auth = make_auth(es256_key, clock, verified_cache_size=0)
    clock.advance(300 + 30 - 1)
    assert decide(auth, request(bearer(token))) is not None
    clock.advance(1)
    assert refuse(auth, request(bearer(token))).reason == "token_expired"


def test_cached_token_is_refused_after_it_expires(static_auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    """The verified-token cache must not stretch a token's life."""
    token = mint(es256_key, now=clock.now, lifetime=60)
    assert decide(static_auth, request(bearer(token))) is not None
    clock.advance(60 + 30)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "token_expired"


def test_cached_token_is_refused_after_max_age(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, max_age=100.0)
    token = mint(es256_key, now=clock.now, lifetime=3600)
    assert decide(auth, request(bearer(token))) is not None
    clock.advance(131)
    assert refuse(auth, request(bearer(token))).reason == "token_too_old"


def test_not_yet_valid_token_becomes_valid(es256_key: Key, clock: FakeClock) -> None:
    token = mint(es256_key, {"nbf": int(clock.now) + 100}, now=clock.now)
    auth = make_auth(es256_key, clock)
    assert refuse(auth, request(bearer(token))).reason == "token_not_yet_valid"
    clock.advance(70)
    assert decide(auth, request(bearer(token))) is not None


def test_future_iat_end_to_end(static_auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    token = mint(es256_key, now=clock.now + 3600)
    assert refuse(static_auth, request(bearer(token))).reason == "iat_in_future"


def test_long_lived_token_end_to_end(static_auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    token = mint(es256_key, now=clock.now, lifetime=7 * 86400)
    assert refuse(static_auth, request(bearer(token))).reason == "lifetime_too_long"


def test_two_mistyped_claims_give_one_reason_whatever_the_hash_seed() -> None:
    import subprocess
    import sys

    code = (
        "from jwt_middleware.core.claims import _check_types\n"
        "from jwt_middleware.errors import InvalidToken\n"
        "try:\n    _check_types({'sub': 1, 'scope': 2, 'jti': 3, 'amr': 'x'})\n"
        "except InvalidToken as e:\n    print(e.reason)\n"
    )
    reasons = {
        subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": str(seed)}, capture_output=True,
                       text=True, check=True).stdout.strip()
        for seed in range(6)
    }
    assert reasons == {"invalid_amr"}
