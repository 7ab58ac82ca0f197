"""Every accepted JWS algorithm, signed by three independent implementations (RFC 7518 §3, RFC 8037,
RFC 9864): the token is accepted, and the same token with one bit flipped is refused.

Signers, none of them ours:

- ``cryptography`` directly: the signing input built by hand (base64url header "." payload),
  ECDSA's DER output turned into fixed-size r || s (RFC 7518 §3.4), RSASSA-PSS with MGF1 and a
  salt as long as the hash (§3.5), Ed25519 as is (RFC 8037 §3.1);
- joserfc's JWS API;
- panva's npm ``jose`` (``tests/interop/op/sign.mjs``; the package comes with the interop
  install, scripts/install-interop.sh). Without node or that package only this column skips.

Keys are made with ``cryptography`` and written out as JWKs by hand (RFC 7518 §6, RFC 8037 §2).
Each token goes through the real stack twice: ``Authenticator.authenticate`` (for the reason code)
and the ASGI middleware around a Starlette app (for the status, challenge and that the app ran).
DPoP proofs (RFC 9449 §4.2) signed by the same three signers go through ``check_proof``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import JWKRegistry

from jwt_middleware import (
    Authenticator,
    Config,
    InvalidDPoPProof,
    InvalidToken,
    Issuer,
    RequestView,
    StaticKeys,
)
from jwt_middleware.core.dpop import DPoPPolicy, check_proof
from jwt_middleware.testing import FakeClock

from ..attacks.harness import Harness

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

NOW: Final = 1_800_000_000
ISSUER: Final = "https://matrix.issuer.test"
AUDIENCE: Final = "api"
URL: Final = "https://api.test/resource"
SIGN_SCRIPT: Final = Path(__file__).parent / "op" / "sign.mjs"
JOSE_PACKAGE: Final = Path(__file__).parent / "op" / "node_modules" / "jose"
NODE_TIMEOUT: Final = 60.0  # seconds for one sign.mjs run

ALGORITHMS: Final = (
    "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA", "Ed25519",
)
SIGNERS: Final = ("cryptography", "joserfc", "jose")
_HASH: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    "256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512,
}
_CURVE: Final = {
    "ES256": (ec.SECP256R1, "P-256", 32),
    "ES384": (ec.SECP384R1, "P-384", 48),
    "ES512": (ec.SECP521R1, "P-521", 66),
}
#: RFC 7518 §3.4 (r || s), RSA-2048 (one modulus), RFC 8037 §3.1
SIGNATURE_BYTES: Final = {"ES256": 64, "ES384": 96, "ES512": 132, "EdDSA": 64, "Ed25519": 64}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _int(value: int, size: int | None = None) -> str:
    return b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


# --- keys, as JWKs written by hand ----------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    alg: str
    kid: str
    private: PrivateKey
    #: RFC 7638 members only (what a DPoP proof's header carries)
    public_members: dict[str, str]
    private_jwk: dict[str, Any]

    @property
    def public_jwk(self) -> dict[str, Any]:
        return {**self.public_members, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def thumbprint(self) -> str:
        """RFC 7638 §3: the required members, sorted, no whitespace, SHA-256."""
        canonical = json.dumps(self.public_members, sort_keys=True, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())


def _make_key(alg: str) -> SigningKey:
    members: dict[str, str]
    secret: dict[str, str]
    private: PrivateKey
    if alg in _CURVE:
        curve, crv, size = _CURVE[alg]
        ec_private = ec.generate_private_key(curve())
        ec_numbers = ec_private.private_numbers()
        point = ec_numbers.public_numbers
        members = {"kty": "EC", "crv": crv, "x": _int(point.x, size), "y": _int(point.y, size)}
        secret = {"d": _int(ec_numbers.private_value, size)}
        private = ec_private
    elif alg[:2] in ("RS", "PS"):
        rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_numbers = rsa_private.private_numbers()
        public = rsa_numbers.public_numbers
        members = {"kty": "RSA", "e": _int(public.e), "n": _int(public.n)}
        secret = {name: _int(getattr(rsa_numbers, attr)) for name, attr in
                  (("d", "d"), ("p", "p"), ("q", "q"), ("dp", "dmp1"), ("dq", "dmq1"), ("qi", "iqmp"))}
        private = rsa_private
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        raw_public = private.public_key().public_bytes_raw()
        members = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw_public)}
        secret = {"d": b64(private.private_bytes_raw())}
    kid = f"matrix-{alg.lower()}"
    return SigningKey(alg, kid, private, members, {**members, **secret, "kid": kid, "alg": alg})


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {alg: _make_key(alg) for alg in ALGORITHMS}


# --- the three signers ------------------------------------------------------------------------------
def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def sign_with_cryptography(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64(_compact(header))}.{b64(_compact(payload))}".encode()
    alg, private = key.alg, key.private
    if isinstance(private, ec.EllipticCurvePrivateKey):
        size = _CURVE[alg][2]
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(_HASH[alg[2:]]())))
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    elif isinstance(private, rsa.RSAPrivateKey):
        digest = _HASH[alg[2:]]()
        scheme = (padding.PKCS1v15() if alg.startswith("RS")
                  else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size))
        signature = private.sign(signing_input, scheme, digest)
    else:
        signature = private.sign(signing_input)
    return f"{signing_input.decode()}.{b64(signature)}"


def sign_with_joserfc(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    private = JWKRegistry.import_key(key.private_jwk)
    return jws.serialize_compact(header, _compact(payload), private, algorithms=[key.alg])


def _jose_ready() -> str:
    """Empty when node and the npm jose package are there, else why the jose column skips."""
    if shutil.which("node") is None:
        return "node is not installed: the npm jose column of the algorithm matrix needs it"
    if not JOSE_PACKAGE.is_dir():
        return "tests/interop/op/node_modules/jose is missing: run scripts/install-interop.sh"
    return ""


def sign_with_jose(jobs: list[tuple[SigningKey, dict[str, Any], dict[str, Any]]]) -> list[str]:
    """One node run signs every job (node starts in a fraction of a second, but 40 times adds up)."""
    request = {"jobs": [{"alg": k.alg, "jwk": k.private_jwk, "header": h, "payload": p} for k, h, p in jobs]}
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run([node, str(SIGN_SCRIPT)], input=json.dumps(request), cwd=SIGN_SCRIPT.parent,
                          capture_output=True, text=True, timeout=NODE_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"sign.mjs failed: {done.stderr.strip()[-2000:]}")
    tokens: list[str] = json.loads(done.stdout)["tokens"]
    assert len(tokens) == len(jobs)
    return tokens


# --- what each signer signs ----------------------------------------------------------------------------
def token_parts(key: SigningKey, signer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = {"alg": key.alg, "typ": "at+jwt", "kid": key.kid}
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": NOW, "exp": NOW + 300,
              "jti": f"{key.alg}-{signer}", "scope": "read"}
    return header, claims


#: the access token every proof is sent with (the proof's ath is its hash, RFC 9449 §4.2)
PROOF_FOR_TOKEN: Final = "matrix.access.token"


def proof_parts(key: SigningKey, signer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_members}
    ath = b64(hashlib.sha256(PROOF_FOR_TOKEN.encode()).digest())
    claims = {"jti": f"proof-{key.alg}-{signer}", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath}
    return header, claims


@dataclass(frozen=True)
class Signed:
    token: str
    proof: str


SignAll = Callable[[dict[str, SigningKey]], dict[str, Signed]]


def _sign_in_python(sign: Callable[[SigningKey, dict[str, Any], dict[str, Any]], str], signer: str) -> SignAll:
    def sign_all(keys: dict[str, SigningKey]) -> dict[str, Signed]:
        return {alg: Signed(sign(key, *token_parts(key, signer)), sign(key, *proof_parts(key, signer)))
                for alg, key in keys.items()}
    return sign_all


def _sign_with_node(keys: dict[str, SigningKey]) -> dict[str, Signed]:
    jobs = [(key, *parts(key, "jose")) for key in keys.values() for parts in (token_parts, proof_parts)]
    tokens = iter(sign_with_jose(jobs))
    return {alg: Signed(next(tokens), next(tokens)) for alg in keys}


@pytest.fixture(scope="module")
def signed(keys: dict[str, SigningKey]) -> dict[str, dict[str, Signed]]:
    """signer → alg → the access token and the DPoP proof it signed (jose: None when unavailable)."""
    made = {
        "cryptography": _sign_in_python(sign_with_cryptography, "cryptography")(keys),
        "joserfc": _sign_in_python(sign_with_joserfc, "joserfc")(keys),
    }
    if not _jose_ready():
        made["jose"] = _sign_with_node(keys)
    return made


def signed_by(signed: dict[str, dict[str, Signed]], signer: str, alg: str) -> Signed:
    if signer not in signed:
        pytest.skip(_jose_ready())
    return signed[signer][alg]


# --- the verifier: one issuer trusting every algorithm, each key pinned to its own ---------------------
@pytest.fixture(scope="module")
def authenticator(keys: dict[str, SigningKey]) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=ALGORITHMS, keys=StaticKeys({"keys": [k.public_jwk for k in keys.values()]}))
    return Authenticator(Config(issuers=(issuer,), audience=AUDIENCE, clock=FakeClock(float(NOW))))


def view(token: str) -> RequestView:
    return RequestView("GET", "/resource", [(b"authorization", f"Bearer {token}".encode())],
                       client_ip="127.0.0.1")


def refused_reason(auth: Authenticator, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        auth.authenticate(view(token))
    return caught.value.reason


# --- one-bit changes -------------------------------------------------------------------------------------
def flip_signature_bit(token: str) -> str:
    """The lowest bit of the signature's middle byte (inside s for ECDSA, S for EdDSA)."""
    head, body, signature = token.split(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 1
    return f"{head}.{body}.{b64(bytes(raw))}"


def flip_payload_bit(token: str, marker: bytes) -> str:
    """The lowest bit of the last byte of ``marker`` in the payload: still valid JSON, so only
    the signature can tell (``user-1`` becomes ``user-0``)."""
    head, body, signature = token.split(".")
    raw = bytearray(unb64(body))
    at = raw.index(marker) + len(marker) - 1
    raw[at] ^= 1
    json.loads(raw)  # still a valid JSON object
    return f"{head}.{b64(bytes(raw))}.{signature}"


# --- access tokens ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_token_from_independent_signer_is_accepted(
    authenticator: Authenticator, signed: dict[str, dict[str, Signed]], keys: dict[str, SigningKey],
    alg: str, signer: str,
) -> None:
    token = signed_by(signed, signer, alg).token
    assert json.loads(unb64(token.split(".")[0]))["alg"] == alg
    if alg in SIGNATURE_BYTES:
        assert len(unb64(token.split(".")[2])) == SIGNATURE_BYTES[alg]
    identity = authenticator.authenticate(view(token))
    assert identity is not None
    assert (identity.subject, identity.issuer, identity.claims["jti"]) == ("user-1", ISSUER, f"{alg}-{signer}")
    harness = Harness(authenticator)
    harness.assert_accepted(harness.bearer(token))


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("part", ["signature", "payload"])
def test_token_with_one_bit_flipped_is_refused(
    authenticator: Authenticator, signed: dict[str, dict[str, Signed]], alg: str, signer: str, part: str
) -> None:
    token = signed_by(signed, signer, alg).token
    forged = flip_signature_bit(token) if part == "signature" else flip_payload_bit(token, b'"user-1"'[:-1])
    assert forged != token
    assert refused_reason(authenticator, forged) == "bad_signature"
    harness = Harness(authenticator)
    harness.assert_refused(harness.bearer(forged))


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_ed25519_key_verifies_only_the_algorithm_name_it_is_pinned_to(
    authenticator: Authenticator, keys: dict[str, SigningKey], alg: str
) -> None:
    """RFC 9864 deprecates the polymorphic ``EdDSA`` for the fully specified ``Ed25519``; a key
    pinned to one name does not verify tokens that say the other (RFC 8725 §3.1)."""
    other = "Ed25519" if alg == "EdDSA" else "EdDSA"
    key = keys[alg]
    header, claims = token_parts(key, "cryptography")
    renamed = sign_with_cryptography(key, {**header, "alg": other}, claims)
    assert refused_reason(authenticator, renamed) == "alg_mismatch"


# --- DPoP proofs ----------------------------------------------------------------------------------------
def _check(proof: str, alg: str) -> str:
    checked = check_proof(proof, method="GET", url=URL, access_token=PROOF_FOR_TOKEN,
                          policy=DPoPPolicy(algorithms=(alg,)), now=float(NOW))
    return checked.jkt


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_dpop_proof_from_independent_signer_is_accepted(
    signed: dict[str, dict[str, Signed]], keys: dict[str, SigningKey], alg: str, signer: str
) -> None:
    proof = signed_by(signed, signer, alg).proof
    assert _check(proof, alg) == keys[alg].thumbprint()


@pytest.mark.parametrize("signer", SIGNERS)
@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("part", ["signature", "payload"])
def test_dpop_proof_with_one_bit_flipped_is_refused(
    signed: dict[str, dict[str, Signed]], alg: str, signer: str, part: str
) -> None:
    proof = signed_by(signed, signer, alg).proof
    forged = flip_signature_bit(proof) if part == "signature" else flip_payload_bit(proof, b'"GET')
    assert forged != proof
    with pytest.raises(InvalidDPoPProof) as caught:
        _check(forged, alg)
    assert caught.value.reason == "bad_signature"
