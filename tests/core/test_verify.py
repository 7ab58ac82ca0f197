"""Header policy and signatures (RFC 7515, RFC 7518, RFC 8725): each test is a forgery to refuse."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, InvalidToken, Issuer, SharedSecret, StaticKeys
from jwt_middleware.core.verify import _CURVE_ORDER, _ECDSA, _SIZE, _ecdsa_der, check_header, normalize_typ
from jwt_middleware.testing import FakeClock, b64url, make_key, mint, public_jwks, sign_raw

from ._support import ISSUER, NOW, assert_invalid_token, bearer, decide, make_auth, refuse, request

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ES_ISSUER = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys({"keys": []}))


def _ecdsa_in_range(signature: bytes, order: int) -> bool:
    """Whether the raw r||s passes the length and [1, n-1] checks before DER conversion."""
    try:
        _ecdsa_der(signature, order)
    except InvalidSignature:
        return False
    return True


def claims(**extra: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "aud": "api", "sub": "user-1", "iat": int(NOW), "exp": int(NOW) + 300, **extra}


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token whose HMAC key is ``secret`` (computed here: joserfc rightly balks at PEM)."""
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(payload))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def with_signature(token: str, signature: bytes) -> str:
    h, p, _ = token.split(".")
    return f"{h}.{p}.{b64url(signature)}"


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return make_key("RS256", kid="rsa-1")


@pytest.fixture(scope="module")
def attacker_key() -> Key:
    return make_key("ES256", kid="attacker")


# --- alg ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "none "])
@pytest.mark.parametrize("signature", ["", "c2ln"], ids=["empty-signature", "some-signature"])
def test_rejects_alg_none_in_any_casing(static_auth: Authenticator, alg: str, signature: str) -> None:
    header = b64url(json.dumps({"alg": alg, "typ": "at+jwt", "kid": "es-1"}))
    token = f"{header}.{b64url(json.dumps(claims()))}.{signature}"
    assert_invalid_token(refuse(static_auth, request(bearer(token))))
    with pytest.raises(InvalidToken) as caught:
        check_header({"alg": alg}, {}, ES_ISSUER)
    assert caught.value.reason == "alg_not_allowed"


@pytest.mark.parametrize("header", [{}, {"alg": None}, {"alg": 256}, {"alg": ["ES256"]}, {"alg": "es256"}])
def test_rejects_missing_or_non_string_alg(header: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken) as caught:
        check_header(header, {}, ES_ISSUER)
    assert caught.value.reason == "alg_not_allowed"


@pytest.mark.parametrize("alg", ["ES384", "ES512", "EdDSA"])
def test_rejects_algorithm_not_on_the_issuers_allowlist(static_auth: Authenticator, alg: Any) -> None:
    key = make_key(alg, kid="es-1")  # even with the trusted kid
    rendered = refuse(static_auth, request(bearer(mint(key, now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "alg_not_allowed"


def test_rejects_rs256_token_at_es256_issuer(static_auth: Authenticator, rsa_key: Key) -> None:
    rendered = refuse(static_auth, request(bearer(mint(rsa_key, kid="es-1", now=NOW))))
    assert rendered.reason == "alg_not_allowed"


def test_rejects_ps256_signed_with_a_key_pinned_to_rs256(rsa_key: Key, clock: FakeClock) -> None:
    """Both RSA algorithms allowed, but the JWK says RS256: PS256 must not verify with it."""
    auth = make_auth(rsa_key, clock, algorithms=("RS256", "PS256"))
    assert decide(auth, request(bearer(mint(rsa_key, now=NOW)))) is not None
    rendered = refuse(auth, request(bearer(mint(rsa_key, alg="PS256", now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "alg_mismatch"


# --- HMAC key confusion --------------------------------------------------------------------------
def _public_encodings(key: Key) -> dict[str, bytes]:
    public = key.public_key  # type: ignore[attr-defined]
    spki = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = json.dumps(key.as_dict(private=False)).encode()
    found = {"pem-spki": spki, "pem-spki-stripped": spki.strip(), "jwk-json": jwk,
             "der-spki": public.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)}
    if key.key_type == "RSA":
        found["pem-pkcs1"] = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    return found


@pytest.mark.parametrize("encoding", ["pem-spki", "pem-spki-stripped", "jwk-json", "der-spki"])
def test_rejects_hs256_signed_with_the_es256_public_key(
    static_auth: Authenticator, es256_key: Key, encoding: str
) -> None:
    secret = _public_encodings(es256_key)[encoding]
    token = hs256({"alg": "HS256", "typ": "at+jwt", "kid": "es-1"}, claims(), secret)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "alg_not_allowed"


@pytest.mark.parametrize("encoding", ["pem-spki", "pem-pkcs1", "jwk-json", "der-spki"])
@pytest.mark.parametrize("algorithms", [("RS256",), ("RS256", "ES256", "PS256")])
def test_rejects_hs256_signed_with_the_rs256_public_key(
    rsa_key: Key, clock: FakeClock, encoding: str, algorithms: tuple[str, ...]
) -> None:
    auth = make_auth(rsa_key, clock, algorithms=algorithms)
    secret = _public_encodings(rsa_key)[encoding]
    for kid in ("rsa-1", None):
        header = {"alg": "HS256", "typ": "at+jwt", **({"kid": kid} if kid else {})}
        rendered = refuse(auth, request(bearer(hs256(header, claims(), secret))))
        assert rendered.reason == "alg_not_allowed"


def test_rejects_rs256_header_with_an_hmac_signature(rsa_key: Key, clock: FakeClock) -> None:
    """The alg is allowed, so the signature itself must fail: an HMAC tag is no RSA signature."""
    auth = make_auth(rsa_key, clock, algorithms=("RS256",))
    secret = _public_encodings(rsa_key)["pem-spki"]
    token = hs256({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}, claims(), secret)
    assert refuse(auth, request(bearer(token))).reason == "bad_signature"


def test_hs256_issuer_refuses_a_token_signed_with_another_secret(clock: FakeClock) -> None:
    secret = b"s" * 32
    auth = Authenticator(Config(issuers=[Issuer(ISSUER, algorithms=("HS256",), keys=SharedSecret(secret))],
                                audience="api", clock=clock))
    header = {"alg": "HS256", "typ": "at+jwt"}
    assert decide(auth, request(bearer(hs256(header, claims(), secret)))) is not None
    assert refuse(auth, request(bearer(hs256(header, claims(), b"t" * 32)))).reason == "bad_signature"
    big = hs256({"alg": "HS512", "typ": "at+jwt"}, claims(), secret)
    assert refuse(auth, request(bearer(big))).reason == "alg_not_allowed"


# --- signatures ----------------------------------------------------------------------------------
def test_rejects_token_signed_by_another_key_with_the_trusted_kid(
    static_auth: Authenticator, attacker_key: Key
) -> None:
    rendered = refuse(static_auth, request(bearer(mint(attacker_key, kid="es-1", now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "bad_signature"


def test_rejects_tampered_payload(static_auth: Authenticator, es256_key: Key) -> None:
    h, _, s = mint(es256_key, now=NOW).split(".")
    forged = b64url(json.dumps(claims(sub="admin")))
    assert refuse(static_auth, request(bearer(f"{h}.{forged}.{s}"))).reason == "bad_signature"


def _rs(r: int, s: int) -> bytes:
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


SIGNATURES = {
    "r-and-s-zero": _rs(0, 0),  # CVE-2022-21449, "psychic signatures"
    "r-zero": _rs(0, 1),
    "s-zero": _rs(1, 0),
    "r-equals-n": _rs(P256_N, 1),
    "s-equals-n": _rs(1, P256_N),
    "r-above-n": _rs(P256_N + 1, 1),
    "s-all-ones": _rs(1, 2**256 - 1),
}


@pytest.mark.parametrize("signature", list(SIGNATURES.values()), ids=list(SIGNATURES))
def test_rejects_ecdsa_signature_out_of_range(static_auth: Authenticator, es256_key: Key, signature: bytes) -> None:
    token = with_signature(mint(es256_key, now=NOW), signature)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "bad_signature"
    assert not _ecdsa_in_range(signature, P256_N)


def test_ecdsa_range_check_accepts_the_edges() -> None:
    assert _ecdsa_in_range(_rs(1, 1), P256_N)
    assert _ecdsa_in_range(_rs(P256_N - 1, P256_N - 1), P256_N)


# --- curve constants, checked against cryptography ------------------------------------------------
CURVES: dict[str, ec.EllipticCurve] = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
#: RFC 7518 §3.4: the JWS signature is r || s, each as long as the curve order
SIGNATURE_BYTES = {"ES256": 64, "ES384": 96, "ES512": 132}


def _public_point(d: int, curve: ec.EllipticCurve) -> tuple[int, int]:
    numbers = ec.derive_private_key(d, curve).public_key().public_numbers()
    return numbers.x, numbers.y


@pytest.mark.parametrize("alg", list(CURVES))
def test_curve_order_is_the_group_order_cryptography_uses(alg: str) -> None:
    """Each ``_CURVE_ORDER`` entry is the curve's group order n as ``cryptography`` knows it.

    cryptography does not publish n, so two independent facts pin it down:

    1. ``derive_private_key`` accepts a scalar d only when 0 < d < n (OpenSSL's range check):
       ``n - 1`` is accepted and ``n`` refused, so the library's bound is exactly our n;
    2. ``(n - 1)·G`` is ``-G`` (the generator's x, the other y): n·G is the point at infinity,
       which only a multiple of the group order gives. This checks the curve arithmetic,
       not the range test, so a wrong n cannot pass both.
    """
    curve, n = CURVES[alg], _CURVE_ORDER[alg]
    assert n.bit_length() == curve.key_size  # 256, 384, 521 (not 657)
    ec.derive_private_key(n - 1, curve)
    with pytest.raises(ValueError):
        ec.derive_private_key(n, curve)
    gx, gy = _public_point(1, curve)
    minus_x, minus_y = _public_point(n - 1, curve)
    assert minus_x == gx and minus_y != gy


@pytest.mark.parametrize("alg", list(CURVES))
def test_ecdsa_sizes_and_hashes_follow_rfc7518(alg: str) -> None:
    assert 2 * _SIZE[_CURVE_ORDER[alg]] == SIGNATURE_BYTES[alg] == 2 * ((CURVES[alg].key_size + 7) // 8)
    digest = _ECDSA[alg].algorithm
    assert isinstance(digest, hashes.HashAlgorithm)
    assert digest.name == {"ES256": "sha256", "ES384": "sha384", "ES512": "sha512"}[alg]


def test_p256_order_copies_in_the_tests_match_the_library() -> None:
    """The attack corpus and this module keep their own P-256 n (independent of verify.py)."""
    from ..attacks import corpus

    assert P256_N == corpus.P256_N == _CURVE_ORDER["ES256"]


# --- every ECDSA curve verifies (ES512 once never did) ------------------------------------------------
@pytest.fixture(scope="module")
def ec_keys() -> dict[str, Key]:
    return {alg: make_key(alg, kid=f"{alg.lower()}-1") for alg in CURVES}  # type: ignore[arg-type]


@pytest.mark.parametrize("alg", list(CURVES))
def test_genuine_ecdsa_token_verifies_on_every_curve(ec_keys: dict[str, Key], clock: FakeClock, alg: str) -> None:
    key = ec_keys[alg]
    auth = make_auth(key, clock, algorithms=(alg,))
    token = mint(key, now=NOW)
    assert len(__import__("base64").urlsafe_b64decode(token.split(".")[2] + "==")) == SIGNATURE_BYTES[alg]
    identity = decide(auth, request(bearer(token)))
    assert identity is not None and identity.subject == "user-1"


def _es_signature(token: str) -> tuple[int, int, int]:
    raw = __import__("base64").urlsafe_b64decode(token.split(".")[2] + "==")
    half = len(raw) // 2
    return int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"), half


@pytest.mark.parametrize("alg", list(CURVES))
def test_rejects_ecdsa_scalar_equal_to_the_order_on_every_curve(
    ec_keys: dict[str, Key], clock: FakeClock, alg: str
) -> None:
    """r + n and s + n are the same residues, so only the range check can refuse them."""
    key = ec_keys[alg]
    auth = make_auth(key, clock, algorithms=(alg,))
    n = _CURVE_ORDER[alg]
    token = mint(key, now=NOW)
    r, s, size = _es_signature(token)
    for forged_r, forged_s in ((n, s), (r, n), (0, s), (r, 0)):
        forged = forged_r.to_bytes(size, "big") + forged_s.to_bytes(size, "big")
        assert refuse(auth, request(bearer(with_signature(token, forged)))).reason == "bad_signature"
        assert not _ecdsa_in_range(forged, n)  # ours, not only OpenSSL's, refuses it
    assert _ecdsa_in_range((n - 1).to_bytes(size, "big") * 2, n)
    # an r + n that still fits the width: same residue, refused by the range check alone
    if r + n < 1 << (8 * size):
        wrapped = (r + n).to_bytes(size, "big") + s.to_bytes(size, "big")
        assert refuse(auth, request(bearer(with_signature(token, wrapped)))).reason == "bad_signature"


@pytest.mark.parametrize("length", [130, 131, 133, 134, 139, 64, 96])
def test_rejects_es512_signature_of_wrong_length(ec_keys: dict[str, Key], clock: FakeClock, length: int) -> None:
    key = ec_keys["ES512"]
    auth = make_auth(key, clock, algorithms=("ES512",))
    token = mint(key, now=NOW)
    raw = __import__("base64").urlsafe_b64decode(token.split(".")[2] + "==")
    forged = (raw * 2)[:length]
    assert refuse(auth, request(bearer(with_signature(token, forged)))).reason == "bad_signature"


def test_es512_signature_from_cryptography_directly_verifies(ec_keys: dict[str, Key], clock: FakeClock) -> None:
    """Signed without joserfc: OpenSSL's DER output converted to 66 + 66 bytes by hand."""
    key = ec_keys["ES512"]
    header = b64url(json.dumps({"alg": "ES512", "typ": "at+jwt", "kid": key.kid}))
    signing_input = f"{header}.{b64url(json.dumps(claims()))}"
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA512()))
    r, s = decode_dss_signature(der)
    token = f"{signing_input}.{b64url(r.to_bytes(66, 'big') + s.to_bytes(66, 'big'))}"
    assert decide(make_auth(key, clock, algorithms=("ES512",)), request(bearer(token))) is not None


@pytest.mark.parametrize("length", [1, 32, 63, 65, 96, 128])
def test_rejects_ecdsa_signature_of_wrong_length(static_auth: Authenticator, es256_key: Key, length: int) -> None:
    h, p, s = mint(es256_key, now=NOW).split(".")
    real = __import__("base64").urlsafe_b64decode(s + "==")
    signature = (real * 3)[:length]
    assert refuse(static_auth, request(bearer(f"{h}.{p}.{b64url(signature)}"))).reason == "bad_signature"
    assert not _ecdsa_in_range(signature, P256_N)


def test_rejects_der_encoded_ecdsa_signature(static_auth: Authenticator, es256_key: Key) -> None:
    """A valid signature in DER (what OpenSSL emits) instead of JOSE's fixed-size r||s."""
    token = mint(es256_key, now=NOW)
    h, p, s = token.split(".")
    raw = __import__("base64").urlsafe_b64decode(s + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert decide(static_auth, request(bearer(token))) is not None
    assert refuse(static_auth, request(bearer(f"{h}.{p}.{b64url(der)}"))).reason == "bad_signature"


def test_rejects_truncated_rsa_signature(rsa_key: Key, clock: FakeClock) -> None:
    auth = make_auth(rsa_key, clock, algorithms=("RS256",))
    h, p, s = mint(rsa_key, now=NOW).split(".")
    raw = __import__("base64").urlsafe_b64decode(s + "==")
    assert refuse(auth, request(bearer(f"{h}.{p}.{b64url(raw[:-1])}"))).reason == "bad_signature"


# --- crit and b64 ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [{"crit": ["exp"]}, {"crit": []}, {"crit": ["kid"]}, {"crit": ["alg"]}, {"crit": ["b64"], "b64": False},
     {"crit": ["x-custom"], "x-custom": 1}, {"crit": "exp"}, {"b64": False}, {"b64": True}],
    ids=["crit-unknown", "crit-empty", "crit-kid", "crit-alg", "crit-b64-false", "crit-custom", "crit-string",
         "b64-false", "b64-true"],
)
def test_rejects_crit_and_b64(static_auth: Authenticator, es256_key: Key, extra: dict[str, Any]) -> None:
    token = mint(es256_key, header=extra, now=NOW)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "unsupported_crit"


# --- keys never come from the token -------------------------------------------------------------
class _CountingServer:
    """An attacker's key server on 127.0.0.1 that counts every request it gets."""

    def __init__(self, body: bytes) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker_server(attacker_key: Key) -> Iterator[_CountingServer]:
    server = _CountingServer(json.dumps(public_jwks(attacker_key)).encode())
    yield server
    server.close()


def _self_signed(key: Key) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key).serial_number(1)  # type: ignore[attr-defined]
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key.private_key, hashes.SHA256()))  # type: ignore[attr-defined]
    return __import__("base64").b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _key_header(member: str, key: Key, server: _CountingServer) -> Any:
    return {
        "jwk": key.as_dict(private=False),
        "jku": server.url + "/jwks",
        "x5u": server.url + "/cert.pem",
        "x5c": [_self_signed(key)],
    }[member]


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
@pytest.mark.parametrize("kid", ["es-1", "attacker", None], ids=["trusted-kid", "attacker-kid", "no-kid"])
@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow-key-headers"])
def test_rejects_token_signed_by_embedded_or_referenced_attacker_key(
    es256_key: Key, attacker_key: Key, attacker_server: _CountingServer, clock: FakeClock,
    member: str, kid: str | None, allow: bool,
) -> None:
    """Refused at the header by default; with the members allowed they are still never read."""
    auth = make_auth(es256_key, clock, issuer_options={"allow_key_headers": allow})
    token = mint(attacker_key, header={member: _key_header(member, attacker_key, attacker_server)},
                 kid=kid if kid else False, now=NOW)
    view = request(bearer(token))
    hits = attacker_server.hits
    flow = auth.flow(view)
    with pytest.raises(InvalidToken) as caught:
        next(flow)  # refused without asking the outside world for anything
    assert caught.value.reason in (("bad_signature", "unknown_kid") if allow else ("key_header_refused",))
    assert_invalid_token(refuse(auth, view))
    assert attacker_server.hits == hits == 0


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_rejects_key_bearing_header_even_when_our_key_signed(
    static_auth: Authenticator, es256_key: Key, attacker_server: _CountingServer, member: str
) -> None:
    """RFC 8725 §3.10: an issuer sending these is confused, or the token is not what it seems."""
    token = mint(es256_key, header={member: _key_header(member, es256_key, attacker_server)}, now=NOW)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "key_header_refused"
    assert rendered.json["error_description"] == "The token carries or names a key of its own"
    assert attacker_server.hits == 0


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_allow_key_headers_accepts_them_when_our_key_signed(
    es256_key: Key, attacker_server: _CountingServer, clock: FakeClock, member: str
) -> None:
    auth = make_auth(es256_key, clock, issuer_options={"allow_key_headers": True})
    token = mint(es256_key, header={member: _key_header(member, es256_key, attacker_server)}, now=NOW)
    assert decide(auth, request(bearer(token))) is not None
    assert attacker_server.hits == 0


@pytest.mark.parametrize("header", [{"jku": None}, {"x5c": []}, {"jwk": {}}, {"x5u": ""}],
                         ids=["jku-null", "x5c-empty", "jwk-empty", "x5u-empty"])
def test_key_header_is_refused_whatever_its_value(header: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken) as caught:
        check_header({"alg": "ES256", **header}, {}, ES_ISSUER)
    assert caught.value.reason == "key_header_refused"
    allowing = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys({"keys": []}), allow_key_headers=True)
    assert check_header({"alg": "ES256", **header}, {}, allowing) == ("ES256", None)


def test_x5t_thumbprints_are_no_key_headers() -> None:
    """``x5t``/``x5t#S256`` carry no key and point nowhere: not refused."""
    assert check_header({"alg": "ES256", "x5t": "AAAA", "x5t#S256": "AAAA"}, {}, ES_ISSUER) == ("ES256", None)


def test_embedded_jwk_does_not_help_even_with_remote_keys(attacker_key: Key, clock: FakeClock) -> None:
    """A remote issuer asks for its *configured* key set; the effect names no URL from the token."""
    from jwt_middleware import JWKSUrl
    from jwt_middleware.core.effects import FetchKeys

    token = mint(attacker_key, header={"jwk": attacker_key.as_dict(private=False),
                                       "jku": "https://attacker.example/jwks"}, now=NOW)
    allowing = Issuer(ISSUER, algorithms=("ES256",), keys=JWKSUrl("https://issuer.test/jwks"),
                      allow_key_headers=True)
    auth = Authenticator(Config(issuers=(allowing,), audience="api", clock=clock))
    assert next(auth.flow(request(bearer(token)))) == FetchKeys(ISSUER, blocking=True)
    default = Issuer(ISSUER, algorithms=("ES256",), keys=JWKSUrl("https://issuer.test/jwks"))
    auth = Authenticator(Config(issuers=(default,), audience="api", clock=clock))
    with pytest.raises(InvalidToken) as caught:
        next(auth.flow(request(bearer(token))))  # refused before any fetch
    assert caught.value.reason == "key_header_refused"


# --- kid -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kid",
    [1, 1.5, True, None, [], ["es-1"], {"kid": "es-1"}, "", "k" * 257, "es-1\x00", "es-1\n", "es\r\n1",
     "\x7f", "es-1\u2028", "\x1b[31m"],
    ids=["int", "float", "bool", "null", "empty-list", "list", "object", "empty", "too-long", "nul", "newline",
         "crlf", "del", "line-separator", "ansi-escape"],
)
def test_rejects_invalid_kid(static_auth: Authenticator, es256_key: Key, kid: Any) -> None:
    token = mint(es256_key, kid=False, header={"kid": kid}, now=NOW)
    rendered = refuse(static_auth, request(bearer(token)))
    assert_invalid_token(rendered)
    assert rendered.reason == "invalid_kid"


def test_kid_of_256_printable_characters_passes_the_header_check() -> None:
    assert check_header({"alg": "ES256", "kid": "k" * 256}, {}, ES_ISSUER) == ("ES256", "k" * 256)


def test_rejects_unknown_kid(static_auth: Authenticator, es256_key: Key) -> None:
    assert refuse(static_auth, request(bearer(mint(es256_key, kid="es-2", now=NOW)))).reason == "unknown_kid"


# --- typ ---------------------------------------------------------------------------------------------
@pytest.fixture
def at_jwt_auth(es256_key: Key, clock: FakeClock) -> Authenticator:
    return make_auth(es256_key, clock, issuer_options={"typ": ("at+jwt",)})


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_at_jwt_issuer_accepts_at_jwt_spellings(at_jwt_auth: Authenticator, es256_key: Key, typ: str) -> None:
    assert decide(at_jwt_auth, request(bearer(mint(es256_key, header={"typ": typ}, now=NOW)))) is not None


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", "at+jwt ", "at+jwt;x=1", "dpop+jwt", None, 1, ""],
                         ids=["JWT", "jwt", "application-jwt", "trailing-space", "parameter", "dpop", "null", "int",
                              "empty"])
def test_at_jwt_issuer_refuses_other_types(at_jwt_auth: Authenticator, es256_key: Key, typ: Any) -> None:
    rendered = refuse(at_jwt_auth, request(bearer(mint(es256_key, header={"typ": typ}, now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "invalid_typ"


def test_at_jwt_issuer_refuses_missing_typ(at_jwt_auth: Authenticator, es256_key: Key) -> None:
    token = sign_raw({"alg": "ES256", "kid": "es-1"}, claims(), es256_key, "ES256")
    assert refuse(at_jwt_auth, request(bearer(token))).reason == "invalid_typ"


@pytest.mark.parametrize("typ", ["JWT", None])
def test_issuer_without_typ_rule_accepts_plain_jwt(static_auth: Authenticator, es256_key: Key, typ: Any) -> None:
    header: dict[str, Any] = {"alg": "ES256", "kid": "es-1"}
    if typ:
        header["typ"] = typ
    assert decide(static_auth, request(bearer(sign_raw(header, claims(), es256_key, "ES256")))) is not None


@pytest.mark.parametrize(
    "typ", ["dpop+jwt", "application/dpop+jwt", "DPoP+JWT", "secevent+jwt", "logout+jwt", "refresh+jwt",
            "id_token+jwt", None, 7, ["at+jwt"]],
)
def test_rejects_types_that_are_never_access_tokens(static_auth: Authenticator, es256_key: Key, typ: Any) -> None:
    """A DPoP proof, a security event or a logout token is signed by a trusted key too (RFC 8725 §3.11)."""
    rendered = refuse(static_auth, request(bearer(mint(es256_key, header={"typ": typ}, now=NOW))))
    assert rendered.reason == "invalid_typ"


@pytest.mark.parametrize(
    "claim", [{"typ": "Refresh"}, {"typ": "ID"}, {"typ": "Offline"}, {"typ": "Logout"}, {"typ": "refresh"},
              {"token_use": "id"}, {"token_use": "refresh"}],
    ids=["keycloak-refresh", "keycloak-id", "keycloak-offline", "keycloak-logout", "lower-refresh",
         "cognito-id", "cognito-refresh"],
)
@pytest.mark.parametrize("issuer_typ", [None, ("at+jwt",)], ids=["no-typ-rule", "at-jwt-rule"])
def test_rejects_id_and_refresh_tokens_marked_in_claims(
    es256_key: Key, clock: FakeClock, claim: dict[str, str], issuer_typ: tuple[str, ...] | None
) -> None:
    auth = make_auth(es256_key, clock, issuer_options={"typ": issuer_typ})
    rendered = refuse(auth, request(bearer(mint(es256_key, claim, now=NOW))))
    assert_invalid_token(rendered)
    assert rendered.reason == "invalid_typ"


def test_keycloak_access_token_typ_bearer_is_accepted(static_auth: Authenticator, es256_key: Key) -> None:
    assert decide(static_auth, request(bearer(mint(es256_key, {"typ": "Bearer"}, now=NOW)))) is not None


def test_normalize_typ() -> None:
    assert normalize_typ("Application/AT+JWT") == "at+jwt"
    assert normalize_typ("at+jwt") == "at+jwt"
