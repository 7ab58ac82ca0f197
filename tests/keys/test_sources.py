"""Key sources other than a URL: a JWKS file that is re-read like a remote set, keys given in code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from jwt_middleware import (
    Authenticator,
    Config,
    ConfigError,
    InvalidToken,
    Issuer,
    JWKSFile,
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


@pytest.mark.parametrize(
    "keys",
    [
        StaticKeys(public_jwks(make_key("ES384", kid="x"))),
        StaticKeys({"keys": [public_jwks(make_key("ES256", kid="x"))["keys"][0] | {"use": "enc"}]}),
        StaticKeys({"keys": []}),
    ],
    ids=["wrong-alg", "encryption-key", "empty"],
)
def test_static_keys_that_cannot_verify_are_refused_at_start_up(keys: StaticKeys, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="none of the given keys"):
        auth_for(Issuer(ISS, algorithms=("ES256",), keys=keys), clock)


BAD_PEM = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"


@pytest.mark.parametrize("bad", ["not json", BAD_PEM, '{"x": 1}'])
def test_unreadable_static_keys_are_refused_at_start_up(bad: str, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="StaticKeys"):
        auth_for(Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(bad)), clock)


_SPKI_DER = (ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
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
