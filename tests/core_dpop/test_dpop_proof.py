"""DPoP proof checks (RFC 9449 §4.3): every refusal is a proof that would pass but for one change.

Proofs are built here independently of the code under test: ES256 with ``cryptography``
directly (raw r||s over the base64url signing input), RS256 and a weak RSA key likewise, and
EdDSA/PS256 through joserfc's JWS API. Two known-answer proofs come from RFC 9449 itself.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from jwt_middleware.core.dpop import (
    CheckedProof,
    DPoPPolicy,
    access_token_hash,
    check_binding,
    check_proof,
    jwk_thumbprint,
    proof_header,
)
from jwt_middleware.core.dpop_nonce import DPoPNonces
from jwt_middleware.errors import ConfigError, InvalidDPoPProof, InvalidToken, UseDPoPNonce
from jwt_middleware.request import RequestView

from ..support.dpop_client import ES256Client, ath_of, b64, compact
from ..support.dpop_ed25519 import Ed25519Client

NOW = 1_800_000_000.0
URL = "https://api.example.com/v1/items"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJl"
POLICY = DPoPPolicy()
DUPLICATE_ALG = b'{"alg":"ES256","alg":"none"}'


# -- an independent DPoP client: tests/support/dpop_client.py ------------------------------------


def header_for(client: ES256Client, **changes: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": client.jwk()}
    header.update(changes)
    return {k: v for k, v in header.items() if v is not None}


def claims_for(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"jti": b64(secrets.token_bytes(12)), "htm": "GET", "htu": URL,
                              "iat": int(NOW), "ath": ath_of(TOKEN)}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def proof(client: ES256Client, header: dict[str, Any] | None = None, **claim_changes: Any) -> str:
    return client.sign(header or header_for(client), claims_for(**claim_changes))


def check(token: str, **overrides: Any) -> CheckedProof:
    args: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN, "policy": POLICY, "now": NOW}
    args.update(overrides)
    return check_proof(token, **args)


def refused(token: str, reason: str, **overrides: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as info:
        check(token, **overrides)
    assert info.value.reason == reason
    return info.value


@pytest.fixture(scope="module")
def client() -> ES256Client:
    return ES256Client()


# -- accepted proofs ---------------------------------------------------------------------------


def test_accepts_es256_proof_and_reports_thumbprint_jti_and_replay_window(client: ES256Client) -> None:
    token = proof(client, jti="proof-1")
    checked = check(token)
    assert checked == CheckedProof(jkt=client.thumbprint(), jti="proof-1", iat=NOW,
                                   replay_until=NOW + 60 + 5, nonce=None)


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
@pytest.mark.parametrize("curve", ["Ed25519", "Ed448"])
def test_accepts_eddsa_proof_signed_by_joserfc(curve: Literal["Ed25519", "Ed448"]) -> None:
    key = OKPKey.generate_key(curve)
    header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.as_dict(private=False)}
    token = jws.serialize_compact(header, compact(claims_for()), key, algorithms=["EdDSA"])
    assert check(token).jkt == key.thumbprint()


def test_accepts_ed25519_proof_signed_by_cryptography_under_the_default_policy() -> None:
    """RFC 9864 §2.2: ``Ed25519`` is the fully specified EdDSA name; the default list takes it."""
    assert "Ed25519" in POLICY.algorithms and "EdDSA" in POLICY.algorithms
    ed = Ed25519Client()
    token = ed.proof("GET", URL, TOKEN, NOW)
    assert check(token).jkt == ed.thumbprint()
    refused(Ed25519Client(alg="ES256").proof("GET", URL, TOKEN, NOW), "jwk_mismatch")
    refused(token, "alg_not_allowed", policy=DPoPPolicy(algorithms=("EdDSA",)))


def test_accepts_ed25519_proof_signed_by_joserfc() -> None:
    key = OKPKey.generate_key("Ed25519")
    header = {"typ": "dpop+jwt", "alg": "Ed25519", "jwk": key.as_dict(private=False)}
    token = jws.serialize_compact(header, compact(claims_for()), key, algorithms=["Ed25519"])
    assert check(token).jkt == key.thumbprint()


def test_refuses_ed25519_alg_with_an_ed448_key() -> None:
    """RFC 9864 §2.2: ``Ed25519`` names the curve; an Ed448 key under it is refused."""
    key = OKPKey.generate_key("Ed448")
    header = {"typ": "dpop+jwt", "alg": "Ed25519", "jwk": key.as_dict(private=False)}
    signing_input = f"{b64(compact(header))}.{b64(compact(claims_for()))}"
    from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey

    assert isinstance(key.private_key, Ed448PrivateKey)
    signature = key.private_key.sign(signing_input.encode())
    refused(f"{signing_input}.{b64(signature)}", "jwk_mismatch")


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_accepts_rsa_proof_signed_by_joserfc(alg: str) -> None:
    key = RSAKey.generate_key(2048)
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": key.as_dict(private=False)}
    token = jws.serialize_compact(header, compact(claims_for()), key, algorithms=[alg])
    assert check(token).jkt == key.thumbprint()


def test_accepts_rfc9449_token_request_example_without_ath() -> None:
    """RFC 9449 §4.1 figure 4: the token request proof (no access token, so no ath)."""
    token = (
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZ"
        "OXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIs"
        "ImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVy"
        "LmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFL"
        "bdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
    )
    checked = check(token, method="POST", url="https://server.example.com/token", access_token=None,
                    now=1562262620.0)
    assert checked.jkt == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"  # RFC 9449 §6.1 cnf.jkt
    assert checked.jti == "-BwC3ESc6acc2lTc"


def test_accepts_rfc9449_protected_resource_example_with_ath() -> None:
    """RFC 9449 §7.1 figures 13-14: the resource request proof and its access token."""
    token = (
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZ"
        "OXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIs"
        "ImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJj"
        "ZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05y"
        "V0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6"
        "Fy1dqd-jfxSYoMxhAJpLjA"
    )
    access_token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    checked = check(token, url="https://resource.example.org/protectedresource",
                    access_token=access_token, now=1562262620.0)
    assert checked.jkt == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    refused(token, "ath_mismatch", url="https://resource.example.org/protectedresource",
            access_token=access_token + "x", now=1562262620.0)


def test_access_token_hash_matches_rfc9449_example() -> None:
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )
    assert access_token_hash(TOKEN) == ath_of(TOKEN)


@pytest.mark.parametrize("typ", ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt", "Application/DPOP+JWT"])
def test_accepts_typ_in_any_case_and_with_application_prefix(client: ES256Client, typ: str) -> None:
    """RFC 7515 §4.1.9: media types compare case-insensitively; ``application/`` may be omitted."""
    check(proof(client, header_for(client, typ=typ)))


def test_accepts_iat_at_both_edges_of_the_window(client: ES256Client) -> None:
    check(proof(client, iat=NOW - 65))
    check(proof(client, iat=NOW + 5))
    check(proof(client, iat=NOW - 0.5))


@pytest.mark.parametrize(
    "htu",
    [
        URL + "?page=2",
        URL + "#fragment",
        URL + "?a=1#b",
        "HTTPS://API.Example.COM/v1/items",
        "https://api.example.com:443/v1/items",
        "https://api.example.com:/v1/items",
        "https://api.example.com/v1/%69tems",
        "https://api.example.com/v1/./items",
        "https://api.example.com/v1/x/../items",
    ],
)
def test_accepts_htu_equal_after_normalisation_with_query_and_fragment_ignored(
    client: ES256Client, htu: str
) -> None:
    check(proof(client, htu=htu))


def test_compares_percent_encoding_case_insensitively(client: ES256Client) -> None:
    token = proof(client, htu="https://api.example.com/caf%c3%a9/a%2fb")
    check(token, url="https://api.example.com/caf%C3%A9/a%2Fb")


def test_ignores_a_query_on_the_request_url_too(client: ES256Client) -> None:
    check(proof(client), url=URL + "?page=2")


def test_proof_for_token_request_needs_no_ath(client: ES256Client) -> None:
    check(proof(client, ath=None), access_token=None)


def test_returns_the_nonce_when_nonces_are_off(client: ES256Client) -> None:
    assert check(proof(client, nonce="abc")).nonce == "abc"


# -- header refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["jwt", "JWT", "at+jwt", "dpop", "application/jwt", "dpop+jwt ", 1, None])
def test_refuses_wrong_or_missing_typ(client: ES256Client, typ: object) -> None:
    header = header_for(client)
    if typ is None:
        del header["typ"]
    else:
        header["typ"] = typ
    refused(proof(client, header), "invalid_typ")


def test_refuses_alg_none(client: ES256Client) -> None:
    signed = proof(client)
    head, payload, _ = signed.split(".")
    none_header = b64(compact({**header_for(client), "alg": "none"}))
    refused(f"{none_header}.{payload}.{b64(b'x')}", "alg_not_allowed")
    # the same proof with its header swapped back would pass: only alg differs
    check(f"{head}.{payload}.{signed.split('.')[2]}")


def test_refuses_alg_hs256_with_a_symmetric_jwk() -> None:
    secret = secrets.token_bytes(32)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64(secret)}}
    signing_input = f"{b64(compact(header))}.{b64(compact(claims_for()))}"
    mac = hmac.digest(secret, signing_input.encode(), "sha256")
    error = refused(f"{signing_input}.{b64(mac)}", "alg_not_allowed")
    assert error.params == {"algs": "ES256 ES384 EdDSA Ed25519 RS256 PS256"}


def test_refuses_alg_not_in_policy(client: ES256Client) -> None:
    refused(proof(client), "alg_not_allowed", policy=DPoPPolicy(algorithms=("EdDSA",)))


@pytest.mark.parametrize(
    "extension", [{"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}, {"b64": True}]
)
def test_refuses_crit_and_b64(client: ES256Client, extension: dict[str, Any]) -> None:
    refused(proof(client, header_for(client, **extension)), "unsupported_crit")


# -- key refusals ------------------------------------------------------------------------------


def test_refuses_missing_jwk(client: ES256Client) -> None:
    header = header_for(client)
    del header["jwk"]
    refused(proof(client, header), "missing_jwk")


def test_refuses_jwk_that_is_not_an_object(client: ES256Client) -> None:
    refused(proof(client, header_for(client, jwk="not-a-key")), "missing_jwk")


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_refuses_private_key_members_in_jwk(client: ES256Client, member: str) -> None:
    jwk = client.jwk()
    if member == "d":
        jwk["d"] = b64(client.private.private_numbers().private_value.to_bytes(32, "big"))
    else:
        jwk[member] = b64(b"\x01" * 32)
    refused(proof(client, header_for(client, jwk=jwk)), "private_key_in_jwk")


def test_refuses_rsa_jwk_under_an_ec_alg(client: ES256Client) -> None:
    rsa_jwk = RSAKey.generate_key(2048).as_dict(private=False)
    refused(proof(client, header_for(client, jwk=rsa_jwk)), "jwk_mismatch")


def test_refuses_p384_jwk_under_es256(client: ES256Client) -> None:
    p384 = ECKey.generate_key("P-384").as_dict(private=False)
    refused(proof(client, header_for(client, jwk=p384)), "jwk_mismatch")


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_refuses_x25519_jwk_under_eddsa() -> None:
    """joserfc's EdDSA check_key accepts any OKP key; an X25519 key cannot sign at all."""
    signer = OKPKey.generate_key("Ed25519")
    x25519 = OKPKey.generate_key("X25519").as_dict(private=False)
    header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": x25519}
    token = jws.serialize_compact(header, compact(claims_for()), signer, algorithms=["EdDSA"])
    refused(token, "jwk_mismatch")


@pytest.mark.parametrize("crv", [None, ["P-256"], "P-257"])
def test_refuses_bad_curve_member(client: ES256Client, crv: object) -> None:
    jwk = client.jwk()
    jwk["crv"] = crv
    refused(proof(client, header_for(client, jwk=jwk)), "jwk_mismatch")


def test_refuses_point_off_the_curve(client: ES256Client) -> None:
    jwk = client.jwk()
    jwk["y"] = jwk["x"]
    refused(proof(client, header_for(client, jwk=jwk)), "invalid_jwk")


def test_refuses_coordinate_with_a_leading_zero_byte(client: ES256Client) -> None:
    """One key, one thumbprint: RFC 7518 §6.2.1.2 fixes the coordinate length."""
    jwk = client.jwk()
    jwk["x"] = b64(b"\x00" + base64.urlsafe_b64decode(jwk["x"] + "="))
    refused(proof(client, header_for(client, jwk=jwk)), "invalid_jwk")


@pytest.mark.parametrize("change", [{"use": "enc"}, {"alg": "ES384"}, {"key_ops": ["encrypt"]}, {"x": 5}])
def test_refuses_jwk_unfit_for_signing_with_alg(client: ES256Client, change: dict[str, Any]) -> None:
    refused(proof(client, header_for(client, jwk={**client.jwk(), **change})), "invalid_jwk")


def test_refuses_rsa_key_under_2048_bits() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    numbers = private.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64(numbers.n.to_bytes(128, "big")), "e": b64(numbers.e.to_bytes(3, "big"))}
    header = compact({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk})
    signing_input = f"{b64(header)}.{b64(compact(claims_for()))}"
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    refused(f"{signing_input}.{b64(signature)}", "invalid_jwk")


def test_refuses_rsa_key_over_8192_bits_before_building_it() -> None:
    n = secrets.randbits(8300) | (1 << 8299) | 1
    jwk = {"kty": "RSA", "n": b64(n.to_bytes(1038, "big")), "e": "AQAB"}
    header = b64(compact({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}))
    refused(f"{header}.{b64(compact(claims_for()))}.{b64(bytes(1038))}", "invalid_jwk",
            policy=DPoPPolicy(max_proof_bytes=8192))


# -- signature refusals ------------------------------------------------------------------------


def test_refuses_tampered_signature(client: ES256Client) -> None:
    head, payload, signature = proof(client).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    refused(f"{head}.{payload}.{b64(bytes(raw))}", "bad_signature")


def test_refuses_tampered_payload(client: ES256Client) -> None:
    head, _, signature = proof(client).split(".")
    refused(f"{head}.{b64(compact(claims_for(htm='GET')))}.{signature}", "bad_signature")


def test_refuses_signature_by_another_key(client: ES256Client) -> None:
    other = ES256Client()
    refused(other.sign(header_for(client), claims_for()), "bad_signature")


@pytest.mark.parametrize("signature", [bytes(64), b"\x00" * 63, b"\x01" * 65])
def test_refuses_zero_or_misshapen_ecdsa_signature(client: ES256Client, signature: bytes) -> None:
    """CVE-2022-21449 'psychic signatures' sent r = s = 0."""
    head, payload, _ = proof(client).split(".")
    refused(f"{head}.{payload}.{b64(signature)}", "bad_signature")


# -- shape and size refusals -------------------------------------------------------------------


def test_refuses_oversize_proof(client: ES256Client) -> None:
    big = proof(client, padding="x" * 4096)
    error = refused(big, "token_too_large")
    assert "access token" not in error.description
    check(proof(client, padding="x" * 100))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "malformed_token"),
        ("a.b", "malformed_token"),
        ("a.b.c.d.e", "encrypted_token_unsupported"),
        (f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'sig')}", "malformed_header"),
        (f"{b64(DUPLICATE_ALG)}.{b64(b'{}')}.{b64(b'sig')}", "malformed_header"),
        (f"{b64(b'{}')}.{b64(b'nope')}.{b64(b'sig')}", "malformed_payload"),
    ],
)
def test_refuses_malformed_proof_with_the_gate_reason(token: str, reason: str) -> None:
    error = refused(token, reason)
    assert error.error == "invalid_dpop_proof"


# -- claim refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"jti": None}, "invalid_jti"),
        ({"jti": ""}, "invalid_jti"),
        ({"jti": "j" * 257}, "invalid_jti"),
        ({"jti": 12345}, "invalid_jti"),
        ({"htm": None}, "invalid_htm"),
        ({"htm": "POST"}, "htm_mismatch"),
        ({"htm": "get"}, "htm_mismatch"),
        ({"htu": None}, "invalid_htu"),
        ({"htu": ["https://api.example.com/v1/items"]}, "invalid_htu"),
        ({"htu": "https://api.example.com/v1/other"}, "htu_mismatch"),
        ({"htu": "https://api.example.com/v1/Items"}, "htu_mismatch"),
        ({"htu": "https://api.example.com/v1/items/"}, "htu_mismatch"),
        ({"htu": "https://evil.example.com/v1/items"}, "htu_mismatch"),
        ({"htu": "http://api.example.com/v1/items"}, "htu_mismatch"),
        ({"htu": "https://api.example.com:8443/v1/items"}, "htu_mismatch"),
        ({"htu": "https://user@api.example.com/v1/items"}, "htu_mismatch"),
        ({"htu": "/v1/items"}, "htu_mismatch"),
        ({"htu": "ftp://api.example.com/v1/items"}, "htu_mismatch"),
        ({"htu": "https://api.example.com/v1/it\tems"}, "htu_mismatch"),
        ({"htu": "https://api.example.com:99999/v1/items"}, "htu_mismatch"),
        ({"iat": NOW - 66}, "iat_too_old"),
        ({"iat": NOW - 3600}, "iat_too_old"),
        ({"iat": NOW + 6}, "iat_in_future"),
        ({"iat": str(int(NOW))}, "invalid_iat"),
        ({"iat": True}, "invalid_iat"),
        ({"iat": None}, "invalid_iat"),
        ({"ath": None}, "missing_ath"),
        ({"ath": 7}, "missing_ath"),
        ({"ath": ath_of("another.access.token")}, "ath_mismatch"),
        ({"ath": "é"}, "ath_mismatch"),
        ({"nonce": 42}, "invalid_nonce"),
    ],
)
def test_refuses_bad_claim(client: ES256Client, changes: dict[str, Any], reason: str) -> None:
    refused(proof(client, **changes), reason)


def test_refuses_iat_that_overflows_to_infinity(client: ES256Client) -> None:
    payload = compact(claims_for(iat=123456789)).replace(b"123456789", b"1e400")
    signing_input = f"{b64(compact(header_for(client)))}.{b64(payload)}"
    der = client.private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    refused(f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", "invalid_iat")


def test_refuses_ath_on_a_proof_without_access_token(client: ES256Client) -> None:
    refused(proof(client), "unexpected_ath", access_token=None)


def test_refuses_proof_for_another_method_or_url_of_the_request(client: ES256Client) -> None:
    token = proof(client)
    refused(token, "htm_mismatch", method="DELETE")
    refused(token, "htu_mismatch", url="https://api.example.com/v1/items/7")
    refused(token, "htu_mismatch", url="not a url")


@pytest.mark.parametrize(
    "changes",
    [{"htu": "https://MARKER-7f3a.example/"}, {"htm": "MARKER-7f3a"}, {"jti": "MARKER-7f3a" * 40},
     {"ath": "MARKER-7f3a"}, {"nonce": ["MARKER-7f3a"]}],
)
def test_descriptions_never_echo_claim_values(client: ES256Client, changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidDPoPProof) as info:
        check(proof(client, **changes))
    assert "MARKER-7f3a" not in str(info.value) and "MARKER-7f3a" not in repr(info.value.params)


# -- nonces (§8, §9) ---------------------------------------------------------------------------


NONCES = DPoPNonces(b"n" * 32, step=300.0)


def nonce_check(token: str, now: float = NOW) -> CheckedProof:
    return check(token, now=now, nonce_valid=lambda nonce: NONCES.is_valid(nonce, now))


def test_accepts_current_nonce_and_returns_it(client: ES256Client) -> None:
    nonce = NONCES.issue(NOW)
    assert nonce_check(proof(client, nonce=nonce)).nonce == nonce


def test_accepts_nonce_from_the_previous_step(client: ES256Client) -> None:
    nonce = NONCES.issue(NOW - 300)
    assert nonce_check(proof(client, nonce=nonce)).nonce == nonce


def test_missing_nonce_asks_for_one(client: ES256Client) -> None:
    with pytest.raises(UseDPoPNonce) as info:
        nonce_check(proof(client))
    assert info.value.reason == "nonce_required"
    assert info.value.error == "use_dpop_nonce"


@pytest.mark.parametrize(
    "nonce",
    [
        NONCES.issue(NOW - 600),
        NONCES.issue(NOW + 300),
        DPoPNonces(b"m" * 32).issue(NOW),
        "forged-nonce",
        b64(bytes(24)),
    ],
    ids=["two-steps-back", "next-step", "other-secret", "garbage", "zeros"],
)
def test_stale_or_forged_nonce_asks_for_a_new_one(client: ES256Client, nonce: str) -> None:
    with pytest.raises(UseDPoPNonce) as info:
        nonce_check(proof(client, nonce=nonce))
    assert info.value.reason == "nonce_stale"


def test_nonce_is_checked_only_after_the_proof_itself(client: ES256Client) -> None:
    """A bad proof is refused as invalid, not answered with a fresh nonce."""
    other = ES256Client()
    refused(other.sign(header_for(client), claims_for()), "bad_signature",
            nonce_valid=lambda nonce: NONCES.is_valid(nonce, NOW))


# -- proof_header (§4.3 check 1) ---------------------------------------------------------------


def test_proof_header_returns_the_one_proof() -> None:
    request = RequestView("GET", "/", [(b"dpop", b" abc.def.ghi "), (b"authorization", b"DPoP x")])
    assert proof_header(request) == "abc.def.ghi"


def test_proof_header_refuses_missing_proof() -> None:
    with pytest.raises(InvalidDPoPProof) as info:
        proof_header(RequestView("GET", "/", [(b"authorization", b"DPoP x")]))
    assert info.value.reason == "missing_proof"


@pytest.mark.parametrize(
    "headers",
    [[(b"dpop", b"a.b.c"), (b"dpop", b"a.b.c")], [(b"dpop", b"a.b.c, d.e.f")]],
    ids=["two-lines", "comma-joined"],
)
def test_proof_header_refuses_two_proofs(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(InvalidDPoPProof) as info:
        proof_header(RequestView("GET", "/", headers))
    assert info.value.reason == "multiple_proofs"


# -- binding (§6.1) and thumbprints (RFC 7638) -------------------------------------------------


def test_binding_accepts_matching_jkt(client: ES256Client) -> None:
    checked = check(proof(client))
    check_binding(client.thumbprint(), checked)


@pytest.mark.parametrize("jkt", [None, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", "", "é"])
def test_binding_refuses_other_or_missing_jkt_as_invalid_token(client: ES256Client, jkt: str | None) -> None:
    checked = check(proof(client))
    with pytest.raises(InvalidToken) as info:
        check_binding(jkt, checked)
    assert info.value.reason == "dpop_binding_mismatch"
    assert info.value.error == "invalid_token"
    assert info.value.scheme == "DPoP"  # RFC 9449 §7.1: the error sits on the DPoP challenge


def test_thumbprint_matches_rfc7638_example() -> None:
    """RFC 7638 §3.1: the RSA key of RFC 7517 appendix A.1, optional members ignored."""
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
        "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMi"
        "cAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3"
        "XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprint_agrees_with_independent_computation(client: ES256Client) -> None:
    assert jwk_thumbprint(client.jwk()) == client.thumbprint()
    okp = OKPKey.generate_key("Ed25519")
    assert jwk_thumbprint(okp.as_dict(private=False)) == okp.thumbprint()


# -- policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithms": ("HS256",)},
        {"algorithms": ("ES256", "none")},
        {"algorithms": ("none",)},
        {"algorithms": ()},
        {"algorithms": ("ES256K",)},
        {"iat_window": 0},
        {"leeway": -1},
        {"max_proof_bytes": 10},
    ],
)
def test_policy_refuses_unsafe_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DPoPPolicy(**kwargs)


def test_policy_takes_a_list_and_stores_a_tuple() -> None:
    policy = DPoPPolicy(algorithms=["ES256"])  # type: ignore[arg-type]
    assert policy.algorithms == ("ES256",)
