"""Key sources other than a URL: a JWKS file that is re-read like a remote set, keys given in code."""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from jwt_middleware import (
    Authenticator,
    Config,
    ConfigError,
    InvalidToken,
    Issuer,
    JWKSFile,
    KeyPolicy,
    SharedSecret,
    StaticKeys,
)
from jwt_middleware.testing import Alg, FakeClock, make_key, mint, public_jwks

from .conftest import Decide
from .helpers import bearer

ISS = "https://issuer.test"


def auth_for(issuer: Issuer, clock: FakeClock) -> Authenticator:
    return Authenticator(Config(issuers=(issuer,), audience="api", clock=clock))


async def test_rotated_jwks_file_is_picked_up_after_its_ttl_and_a_vanished_file_serves_stale(
    decide: Decide, clock: FakeClock, tmp_path: Path
) -> None:
    old, new = make_key("ES256", kid="old"), make_key("ES256", kid="new")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(old)))
    auth = auth_for(Issuer(ISS, algorithms=("ES256",), keys=JWKSFile(str(path))), clock)
    assert await decide(auth, bearer(mint(old, now=clock.now)))
    path.write_text(json.dumps(public_jwks(new)))
    clock.advance(600)  # default_ttl: a file has no Cache-Control
    assert await decide(auth, bearer(mint(new, now=clock.now)))
    with pytest.raises(InvalidToken):
        await decide(auth, bearer(mint(old, now=clock.now)))
    path.unlink()
    clock.advance(600)
    assert await decide(auth, bearer(mint(new, now=clock.now)))  # last good set, stale-if-error


@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_pem_public_key_in_code_verifies_tokens_with_any_kid_hint(alg: Alg, clock: FakeClock) -> None:
    key = make_key(alg, kid="k")
    assert isinstance(key, RSAKey | ECKey | OKPKey)
    auth = auth_for(Issuer(ISS, algorithms=(alg,), keys=StaticKeys(key.as_pem(private=False))), clock)
    assert auth.authenticate(bearer(mint(key, now=clock.now, kid=False)))
    assert auth.authenticate(bearer(mint(key, now=clock.now, kid="whatever")))
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(mint(make_key(alg, kid="k"), now=clock.now)))
    assert caught.value.reason == "bad_signature"


def test_shared_secret_verifies_hs256_and_refuses_another_secret(clock: FakeClock) -> None:
    secret = os.urandom(32)
    key = OctKey.import_key(secret, {"kid": "hs", "alg": "HS256"})
    auth = auth_for(Issuer(ISS, algorithms=("HS256",), keys=SharedSecret(secret, kid="hs")), clock)
    assert auth.authenticate(bearer(mint(key, now=clock.now)))
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(bearer(mint(make_key("HS256", kid="hs"), now=clock.now)))
    assert caught.value.reason == "bad_signature"


def test_static_keys_that_cannot_verify_are_refused_at_start_up(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="none of the given keys"):
        auth_for(Issuer(ISS, algorithms=("ES256",), keys=StaticKeys({"keys": []})), clock)


def _weak_rsa(kid: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key it is asked to make
        return dict(RSAKey.generate_key(1024, {"kid": kid, "alg": "RS256"}, auto_kid=False).as_dict(private=False))


GOOD = public_jwks(make_key("ES256", kid="good"))["keys"][0]
#: a key given in code that can never verify under ("ES256", "RS256"), and what the ConfigError says
NEVER_USABLE: dict[str, tuple[dict[str, Any], str]] = {
    "rsa-1024": (_weak_rsa("weak"), "kid 'weak': its RSA modulus has 1024 bits, under 2048"),
    "secp256k1": (dict(ECKey.generate_key("secp256k1", {"kid": "k1"}).as_dict(private=False)),
                  "kid 'k1': EC curve 'secp256k1' is not accepted"),
    "wrong-alg": (public_jwks(make_key("ES384", kid="x"))["keys"][0], "kid 'x': its alg 'ES384' is not in"),
    "encryption-key": (GOOD | {"kid": "x", "use": "enc"}, "kid 'x': its use is 'enc', not 'sig'"),
    "sign-only-ops": (GOOD | {"kid": "x", "key_ops": ["sign"]}, "kid 'x': its key_ops do not include 'verify'"),
    "symmetric": (dict(OctKey.generate_key(256, {"kid": "hs"}).as_dict(private=True)), "kid 'hs': no algorithm"),
    "unknown-kty": ({"kty": "nope"}, "key #1: it is not a valid 'nope' JWK"),
    "duplicate": (GOOD, "kid 'good': an earlier key has the same kid and alg ES256"),
}


@pytest.mark.filterwarnings("ignore:Key size should be")
@pytest.mark.parametrize(("bad", "named"), NEVER_USABLE.values(), ids=NEVER_USABLE.keys())
def test_static_key_that_can_never_verify_is_refused_at_start_up_by_name(
    bad: dict[str, Any], named: str, clock: FakeClock
) -> None:
    """Beside a good key, a bad one used to be dropped in silence: the app started without it."""
    with pytest.raises(ConfigError) as caught:
        auth_for(Issuer(ISS, algorithms=("ES256", "RS256"), keys=StaticKeys({"keys": [GOOD, bad]})), clock)
    message = str(caught.value)
    assert message.startswith(f"Issuer {ISS!r}: StaticKeys: ") and named in message
    assert "remove it" in message  # the fix
    for member in ("n", "x", "y", "k"):  # never key material
        if isinstance(bad.get(member), str):
            assert bad[member] not in message


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_weak_rsa_pem_in_code_is_refused_at_start_up(clock: FakeClock) -> None:
    weak = rsa.generate_private_key(65537, 1024).public_key().public_bytes(*_SPKI_PEM)
    with pytest.raises(ConfigError, match="key #0: its RSA modulus has 1024 bits"):
        auth_for(Issuer(ISS, algorithms=("RS256",), keys=StaticKeys(weak)), clock)


def test_more_static_keys_than_max_keys_are_refused_at_start_up(clock: FakeClock) -> None:
    keys = StaticKeys(public_jwks(*(make_key("ES256", kid=f"k{i}") for i in range(3))))
    config = Config(issuers=(Issuer(ISS, algorithms=("ES256",), keys=keys),), audience="api", clock=clock,
                    keys=KeyPolicy(max_keys=2))
    with pytest.raises(ConfigError, match=re.escape("key #2 on: 1 keys past KeyPolicy.max_keys=2")):
        Authenticator(config)


# --- JWKSFile: read at construction (configuration), re-read later like a remote set -----------------
@pytest.mark.filterwarnings("ignore:Key size should be")
def test_jwks_file_with_a_key_that_can_never_verify_is_refused_at_start_up(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [GOOD, _weak_rsa("weak")]}))
    with pytest.raises(ConfigError) as caught:
        auth_for(Issuer(ISS, algorithms=("ES256", "RS256"), keys=JWKSFile(str(path))), clock)
    assert f"JWKSFile {str(path)!r}: kid 'weak': its RSA modulus has 1024 bits" in str(caught.value)


@pytest.mark.parametrize(("content", "named"), [(None, "unreadable"), ("{nope", "not JSON"), ("[]", "JSON object")],
                         ids=["missing", "not-json", "not-object"])
def test_jwks_file_that_cannot_be_read_is_refused_at_start_up(
    content: str | None, named: str, clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"JWKSFile .*{named}.*give the path of a JWKS document"):
        auth_for(Issuer(ISS, algorithms=("ES256",), keys=JWKSFile(str(path))), clock)


@pytest.mark.filterwarnings("ignore:Key size should be")
async def test_rotated_jwks_file_with_a_weak_key_skips_it_with_a_warning_naming_the_kid(
    decide: Decide, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Once running, the file is the issuer's: one bad key must not take the issuer down."""
    key = make_key("ES256", kid="good")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key)))
    auth = auth_for(Issuer(ISS, algorithms=("ES256", "RS256"), keys=JWKSFile(str(path))), clock)
    weak = _weak_rsa("weak")
    path.write_text(json.dumps({"keys": [key.as_dict(private=False), weak]}))
    clock.advance(600)
    with caplog.at_level(logging.WARNING, logger="jwt_middleware.keys"):
        assert await decide(auth, bearer(mint(key, now=clock.now)))
    [record] = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert record.getMessage() == (
        f"jwks key skipped for issuer {ISS!r}: kid 'weak': its RSA modulus has 1024 bits, under 2048 (RFC 7518 §3.3)"
    )
    assert weak["n"] not in caplog.text


BAD_PEM = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"


@pytest.mark.parametrize("bad", ["not json", BAD_PEM, '{"x": 1}'])
def test_unreadable_static_keys_are_refused_at_start_up(bad: str, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="StaticKeys"):
        auth_for(Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(bad)), clock)


_SPKI_DER = (ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
_SPKI_PEM = (ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
_OPENSSH = (ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
_PUBLIC_FORMS = {
    "spki-der": ("ES256", _SPKI_DER),
    "rsa-spki-der": ("RS256", _SPKI_DER),
    "rsa-pkcs1-der": ("RS256", (ser.Encoding.DER, ser.PublicFormat.PKCS1)),
    "openssh-ecdsa": ("ES384", _OPENSSH),
    "openssh-rsa": ("RS256", _OPENSSH),
    "openssh-ed25519": ("EdDSA", _OPENSSH),
    **{
        f"x962-point-{alg}": (alg, (ser.Encoding.X962, ser.PublicFormat.UncompressedPoint))
        for alg in ("ES256", "ES384", "ES512")
    },
}


@pytest.mark.parametrize(("alg", "encoding"), _PUBLIC_FORMS.values(), ids=_PUBLIC_FORMS.keys())
def test_shared_secret_that_is_a_public_key_in_any_encoding_is_refused(
    alg: Alg, encoding: tuple[ser.Encoding, ser.PublicFormat]
) -> None:
    key = make_key(alg)
    assert isinstance(key, RSAKey | ECKey | OKPKey)
    with pytest.raises(ConfigError, match="public key"):
        SharedSecret(key.public_key.public_bytes(*encoding))


@pytest.mark.parametrize("first", [b"\x30", b"\x04", b"s", b"{"])
@pytest.mark.parametrize("size", [32, 65, 97, 133])
def test_random_shared_secrets_are_not_mistaken_for_public_keys(first: bytes, size: int) -> None:
    for _ in range(20):
        secret = first + os.urandom(size - 1)
        assert SharedSecret(secret).as_bytes() == secret


def test_jwks_file_copied_from_an_idp_skips_keys_meant_for_other_purposes_by_name(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An IdP's published set holds encryption keys and keys for other algorithms: a copy of it
    in a file starts, naming what it skipped; the same keys given in code are refused."""
    enc = dict(make_key("RS256", kid="enc-key").as_dict(private=False), use="enc")
    other = dict(make_key("PS256", kid="ps-key").as_dict(private=False), alg="PS256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [GOOD, enc, other]}))
    with caplog.at_level(logging.WARNING, logger="jwt_middleware"):
        auth = auth_for(Issuer(ISS, algorithms=("ES256",), keys=JWKSFile(str(path))), clock)
    assert auth is not None
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "kid 'enc-key'" in warned and "kid 'ps-key'" in warned
    for key in (enc, other):
        with pytest.raises(ConfigError, match="can never verify"):
            auth_for(Issuer(ISS, algorithms=("ES256",), keys=StaticKeys({"keys": [GOOD, key]})), clock)
