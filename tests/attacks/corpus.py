"""Attack tokens, built from one valid baseline by changing one thing.

Every family function returns :class:`Case` values (an id named for the attack, the token,
and the refusal it must get). The baseline each family mutates is built by the same helpers
(:func:`make`, :func:`make_raw`), and each test module checks that the unmutated baseline is
accepted, so every refusal is meaningful: it is caused by the one change, not by a stale clock,
a wrong audience or a missing key.

Trust set (:func:`make_config`), used by the ASGI harness, the hypothesis properties and the
atheris harness alike:

- ``ISSUER``     ES256, kid ``es-1``, requires ``typ: at+jwt`` (RFC 9068 §2.1)
- ``ISSUER_B``   ES256, kid ``es-1`` as well (another key: a shared kid), requires ``at+jwt``
- ``ISSUER_RS``  RS256, kid ``rs-1``, no ``typ`` requirement
- ``ISSUER_HS``  HS256 shared secret, kid ``hs-1``, no ``typ`` requirement
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.jwk import Key, OctKey

from jwt_middleware import Authenticator, Config, CookieSource, HeaderSource, Issuer, SharedSecret, StaticKeys
from jwt_middleware.testing import FakeClock, b64url, make_key, public_jwks, sign_raw

NOW: Final = 1_800_000_000.0
LEEWAY: Final = 30.0
MAX_LIFETIME: Final = 86_400.0
MAX_TOKEN_BYTES: Final = 8192
AUDIENCE: Final = "api"
COOKIE: Final = "__Host-access_token"
MARKER: Final = "MARKER-91c2"

ISSUER: Final = "https://issuer.test"
ISSUER_B: Final = "https://b.issuer.test"
ISSUER_RS: Final = "https://rs.issuer.test"
ISSUER_HS: Final = "https://hs.issuer.test"

#: P-256 group order n (SEC 2 §2.4.2); valid ECDSA r and s lie in [1, n-1].
P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# RFC 6750 §2.1 b64token: what may follow "Bearer " at all.
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

#: Sentinel for :func:`make`: delete this member from the baseline.
DROP: Final[Any] = object()


@dataclass(frozen=True, slots=True)
class Case:
    """One attack: the token and the refusal it must get (RFC 6750 §3.1)."""

    id: str
    token: str
    status: int = 401
    error: str = "invalid_token"


@dataclass(frozen=True, slots=True)
class KeySet:
    es: Key  # ISSUER's signing key
    es_b: Key  # ISSUER_B's key, same kid "es-1"
    rs: Key  # ISSUER_RS's key
    hs: OctKey  # ISSUER_HS's shared secret
    attacker_es: Key
    attacker_rs: Key
    attacker_es384: Key
    attacker_ed: Key


@functools.cache
def keys() -> KeySet:
    """Generated once per process (RSA generation is the slow part)."""
    secret = hashlib.sha256(b"attacks-suite-shared-secret").digest()
    return KeySet(
        es=make_key("ES256", kid="es-1"),
        es_b=make_key("ES256", kid="es-1"),
        rs=make_key("RS256", kid="rs-1"),
        hs=OctKey.import_key(secret, {"kid": "hs-1", "alg": "HS256", "use": "sig"}),
        attacker_es=make_key("ES256", kid="attacker-1"),
        attacker_rs=make_key("RS256", kid="attacker-rs"),
        attacker_es384=make_key("ES384", kid="attacker-384"),
        attacker_ed=make_key("EdDSA", kid="attacker-ed"),
    )


def hs_secret() -> bytes:
    return keys().hs.raw_value


_ISSUER_KEY: Final[dict[str, Callable[[KeySet], Key]]] = {
    ISSUER: lambda k: k.es,
    ISSUER_B: lambda k: k.es_b,
    ISSUER_RS: lambda k: k.rs,
    ISSUER_HS: lambda k: k.hs,
}
_ISSUER_ALG: Final = {ISSUER: "ES256", ISSUER_B: "ES256", ISSUER_RS: "RS256", ISSUER_HS: "HS256"}
_ISSUER_KID: Final = {ISSUER: "es-1", ISSUER_B: "es-1", ISSUER_RS: "rs-1", ISSUER_HS: "hs-1"}
_ISSUER_TYP: Final = {ISSUER: "at+jwt", ISSUER_B: "at+jwt", ISSUER_RS: "JWT", ISSUER_HS: "JWT"}


def make_config(clock: Callable[[], float] | None = None, **overrides: Any) -> Config:
    k = keys()
    issuers = [
        Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(k.es)), typ=("at+jwt",)),
        Issuer(ISSUER_B, algorithms=("ES256",), keys=StaticKeys(public_jwks(k.es_b)), typ=("at+jwt",)),
        Issuer(ISSUER_RS, algorithms=("RS256",), keys=StaticKeys(public_jwks(k.rs))),
        Issuer(ISSUER_HS, algorithms=("HS256",), keys=SharedSecret(hs_secret(), kid="hs-1")),
    ]
    options: dict[str, Any] = {
        "issuers": issuers,
        "audience": AUDIENCE,
        "sources": (HeaderSource(), CookieSource(COOKIE)),
        "leeway": LEEWAY,
        "max_lifetime": MAX_LIFETIME,
        "max_token_bytes": MAX_TOKEN_BYTES,
        "clock": clock or FakeClock(NOW),
    }
    options.update(overrides)
    return Config(**options)


def make_authenticator(clock: Callable[[], float] | None = None, **overrides: Any) -> Authenticator:
    return Authenticator(make_config(clock, **overrides))


# --- the valid baseline ---------------------------------------------------------------------
def baseline_header(issuer: str = ISSUER) -> dict[str, Any]:
    return {"alg": _ISSUER_ALG[issuer], "typ": _ISSUER_TYP[issuer], "kid": _ISSUER_KID[issuer]}


def baseline_claims(issuer: str = ISSUER) -> dict[str, Any]:
    return {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": int(NOW),
        "nbf": int(NOW),
        "exp": int(NOW) + 300,
        "jti": "jti-0001",
        "scope": "read",
    }


def issuer_key(issuer: str) -> Key:
    return _ISSUER_KEY[issuer](keys())


def _apply(base: dict[str, Any], changes: dict[str, Any] | None) -> dict[str, Any]:
    result = dict(base)
    for name, value in (changes or {}).items():
        if value is DROP:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def make(
    issuer: str = ISSUER,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    key: Key | None = None,
    alg: str | None = None,
) -> str:
    """The baseline for ``issuer`` with ``header``/``claims`` changes (``DROP`` deletes a member),
    signed by ``key`` (default: the issuer's real key) with ``alg`` (default: the issuer's)."""
    head = _apply(baseline_header(issuer), header)
    body = _apply(baseline_claims(issuer), claims)
    return make_raw(json_bytes(head), json_bytes(body), issuer=issuer, key=key, alg=alg)


def make_raw(
    header: bytes, payload: bytes, *, issuer: str = ISSUER, key: Key | None = None, alg: str | None = None
) -> str:
    """Sign exactly these header and payload bytes (for JSON a dict cannot express)."""
    return sign_raw(header, payload, key or issuer_key(issuer), alg or _ISSUER_ALG[issuer])


def header_bytes(issuer: str = ISSUER, **changes: Any) -> bytes:
    return json_bytes(_apply(baseline_header(issuer), changes))


def claims_bytes(issuer: str = ISSUER, **changes: Any) -> bytes:
    return json_bytes(_apply(baseline_claims(issuer), changes))


def splice(document: bytes, fragment: str) -> bytes:
    """Append raw JSON text ``fragment`` as the last member(s) of a compact JSON object."""
    assert document.endswith(b"}")
    return document[:-1] + b"," + fragment.encode("utf-8", "surrogatepass") + b"}"


def parts(token: str) -> list[str]:
    return token.split(".")


def with_signature(token: str, signature: bytes | str) -> str:
    head, body, _ = token.split(".")
    sig = signature if isinstance(signature, str) else b64url(signature)
    return f"{head}.{body}.{sig}"


def signature_of(token: str) -> bytes:
    segment = token.split(".")[2]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unsigned(header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, signature: str = "") -> str:
    h = header if isinstance(header, bytes) else json_bytes(header)
    p = payload if isinstance(payload, bytes) else json_bytes(payload)
    return f"{b64url(h)}.{b64url(p)}.{signature}"


def hmac_token(
    secret: bytes,
    *,
    issuer: str = ISSUER,
    alg: str = "HS256",
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
) -> str:
    """An HS* token MACed with arbitrary bytes (a public key, an empty key): what an attacker can make."""
    head = _apply({**baseline_header(issuer), "alg": alg}, header)
    body = _apply(baseline_claims(issuer), claims)
    signing_input = f"{b64url(json_bytes(head))}.{b64url(json_bytes(body))}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(mac)}"


def expected_for_bearer(token: str) -> tuple[int, str]:
    """RFC 6750: characters outside b64token make the *request* malformed (400 invalid_request);
    a well-formed credential that is not a valid token is the *token's* problem (401)."""
    if _B64TOKEN.fullmatch(token) is None:
        return 400, "invalid_request"
    return 401, "invalid_token"


def case_for_bearer(case_id: str, token: str) -> Case:
    status, error = expected_for_bearer(token)
    return Case(case_id, token, status, error)


# --- public key encodings (what an attacker can download) ----------------------------------------
def public_forms(key: Key) -> dict[str, bytes]:
    """Every public, attacker-known encoding of ``key`` (HMAC key-confusion secrets)."""
    public = key.public_key
    assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = key.as_dict(private=False)
    forms = {
        "pem": pem,
        "pem-no-newline": pem.rstrip(b"\n"),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-json-compact": json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        "jwks-json": json.dumps({"keys": [jwk]}).encode(),
    }
    if key.key_type == "RSA":
        forms["pem-pkcs1"] = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    else:
        forms["x962-point"] = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return forms


def ecdsa_raw(r: int, s: int, size: int = 32) -> bytes:
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def ecdsa_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def nested(depth: int, opener: str = "[", closer: str = "]", inner: str = "1") -> str:
    return opener * depth + inner + closer * depth


# =============================================================================================
# Families. Each returns fresh Cases; tokens are signed by the issuer's REAL key unless the
# attack is the key itself, so the one mutation is the only reason to refuse.
# =============================================================================================
NONE_CASINGS: Final = ("none", "None", "NONE", "nOnE")


def alg_cases() -> list[Case]:
    """RFC 8725 §2.1/§3.1: ``alg`` is attacker-controlled; only the pinned algorithm verifies."""
    k = keys()
    cases: list[Case] = []
    real = make()
    for issuer in (ISSUER, ISSUER_RS, ISSUER_HS):
        for casing in NONE_CASINGS:
            head = {**baseline_header(issuer), "alg": casing}
            body = baseline_claims(issuer)
            host = issuer.split("//")[1].split(".")[0]
            cases.append(Case(f"alg-{casing}-no-signature-{host}", unsigned(head, body)))
            cases.append(
                Case(f"alg-{casing}-original-signature-{host}", unsigned(head, body, real.split(".")[2]))
            )
            cases.append(Case(f"alg-{casing}-no-kid-{host}", unsigned({"alg": casing}, body)))
    cases += [
        Case("alg-none-two-segments", unsigned({"alg": "none"}, baseline_claims())[:-1]),
        Case("alg-missing", make(header={"alg": DROP})),
        Case("alg-null", make(header={"alg": None})),
        Case("alg-empty", make(header={"alg": ""})),
        Case("alg-int", make(header={"alg": 256})),
        Case("alg-list", make(header={"alg": ["ES256"]})),
        Case("alg-object", make(header={"alg": {"name": "ES256"}})),
        Case("alg-lowercase-es256", make(header={"alg": "es256"})),
        Case("alg-trailing-space", make(header={"alg": "ES256 "})),
        Case("alg-with-nul", make(header={"alg": "ES256\x00"})),
        Case("alg-HS256-on-ES-issuer", hmac_token(b"attacker-chosen-secret-0123456789abcdef")),
        Case(
            "alg-RS256-on-ES-issuer",
            make(header={"alg": "RS256", "kid": "attacker-rs"}, key=k.attacker_rs, alg="RS256"),
        ),
        Case("alg-PS256-on-ES-issuer", make(header={"alg": "PS256"}, key=k.attacker_rs, alg="PS256")),
        Case("alg-ES384-on-ES-issuer", make(header={"alg": "ES384"}, key=k.attacker_es384, alg="ES384")),
        Case("alg-EdDSA-on-ES-issuer", make(header={"alg": "EdDSA"}, key=k.attacker_ed, alg="EdDSA")),
        Case("alg-ES256-attacker-key-real-kid", make(key=k.attacker_es)),
        Case(
            "alg-RS256-header-on-real-ES-signature",
            with_signature(make(header={"alg": "RS256"}), signature_of(real)),
        ),
        Case(
            "alg-ES256-on-RS-issuer",
            make(ISSUER_RS, header={"alg": "ES256", "kid": "es-1"}, key=k.es, alg="ES256"),
        ),
        Case("alg-RS384-on-RS-issuer", make(ISSUER_RS, header={"alg": "RS384"}, key=k.rs, alg="RS384")),
        Case(
            "alg-PS256-on-RS-issuer-same-key", make(ISSUER_RS, header={"alg": "PS256"}, key=k.rs, alg="PS256")
        ),
        Case("alg-HS384-on-HS256-issuer", make(ISSUER_HS, header={"alg": "HS384"}, alg="HS384")),
        Case(
            "alg-RS256-on-HS-issuer",
            make(ISSUER_HS, header={"alg": "RS256", "kid": "attacker-rs"}, key=k.attacker_rs, alg="RS256"),
        ),
    ]
    return cases


def key_confusion_cases() -> list[Case]:
    """CVE-2015-9235, CVE-2016-10555, CVE-2022-29217, CVE-2024-33663: the issuer's PUBLIC key
    (in any encoding an attacker can fetch) used as an HMAC secret."""
    k = keys()
    cases: list[Case] = []
    for issuer, key in ((ISSUER, k.es), (ISSUER_RS, k.rs)):
        host = issuer.split("//")[1].split(".")[0]
        for form, secret in public_forms(key).items():
            cases.append(Case(f"HS256-{form}-{host}", hmac_token(secret, issuer=issuer)))
        pem = public_forms(key)["pem"]
        cases += [
            Case(f"HS384-pem-{host}", hmac_token(pem, issuer=issuer, alg="HS384")),
            Case(f"HS512-pem-{host}", hmac_token(pem, issuer=issuer, alg="HS512")),
            Case(f"HS256-pem-no-kid-{host}", hmac_token(pem, issuer=issuer, header={"kid": DROP})),
            Case(f"HS256-pem-no-typ-{host}", hmac_token(pem, issuer=issuer, header={"typ": DROP})),
            # The header keeps the asymmetric alg but the "signature" is an HMAC over the public key.
            Case(
                f"asym-alg-with-hmac-signature-{host}",
                with_signature(make(issuer), signature_of(hmac_token(pem, issuer=issuer))),
            ),
        ]
    # The RSA public key against the ES issuer, and the other way around.
    cases.append(Case("HS256-rsa-pem-on-ES-issuer", hmac_token(public_forms(k.rs)["pem"], issuer=ISSUER)))
    cases.append(Case("HS256-ec-pem-on-RS-issuer", hmac_token(public_forms(k.es)["pem"], issuer=ISSUER_RS)))
    # HMAC issuer: its secret never verifies another issuer's tokens; public keys never verify its own.
    cases.append(
        Case(
            "HS256-real-secret-claiming-ES-issuer",
            hmac_token(hs_secret(), issuer=ISSUER, header={"kid": "hs-1"}),
        )
    )
    cases.append(
        Case(
            "HS256-real-secret-claiming-RS-issuer",
            hmac_token(hs_secret(), issuer=ISSUER_RS, header={"kid": "hs-1"}),
        )
    )
    cases.append(Case("HS256-ec-pem-on-HS-issuer", hmac_token(public_forms(k.es)["pem"], issuer=ISSUER_HS)))
    cases.append(
        Case("HS256-rsa-jwk-on-HS-issuer", hmac_token(public_forms(k.rs)["jwk-json"], issuer=ISSUER_HS))
    )
    return cases


KID_INJECTIONS: Final[dict[str, Any]] = {
    "path-traversal-dev-null": "../../dev/null",
    "path-traversal-etc-passwd": "../../../../../../etc/passwd",
    "absolute-path": "/dev/null",
    "url-attacker": "https://attacker.test/key.pem",
    "double-quote": 'es-1"',
    "single-quote": "es-1'",
    "sql-or-true": "' OR '1'='1",
    "sql-union": "x' UNION SELECT 'c2VjcmV0' --",
    "sql-comment": "es-1' --",
    "shell": "es-1; rm -rf /",
    "ldap": "*)(kid=*",
    "nul-suffix": "es-1\x00",
    "nul-only": "\x00",
    "newline": "es-1\n",
    "crlf-header-injection": "es-1\r\nX-Injected: 1",
    "tab": "es-1\t",
    "escape-char": "es-1\x1b[31m",
    "del-char": "es-1\x7f",
    "unicode-line-separator": "es-1\u2028",
    "bidi-override": "\u202ees-1",
    "zero-width": "es-1\u200b",
    "fullwidth-lookalike": "\uff45s-1",
    "case-changed": "ES-1",
    "padded": " es-1",
    "unknown": "no-such-key",
    "kid-of-another-issuer": "rs-1",
    "empty": "",
    "long-300": "k" * 300,
    "long-4000": "k" * 4000,
    "int": 1,
    "float": 1.5,
    "bool": True,
    "list": ["es-1"],
    "object": {"kid": "es-1"},
    "null": None,
}


def kid_cases() -> list[Case]:
    """Kid injection: every hostile kid on a token signed by the REAL key must still be refused
    (the kid names a key; it is never a path, a query or a free-form string)."""
    cases = [Case(f"kid-{name}", make(header={"kid": value})) for name, value in KID_INJECTIONS.items()]
    # The classic: kid points at /dev/null, HMAC with the empty key (or a newline) it would read.
    for secret_name, secret in (("empty-key", b""), ("newline-key", b"\n"), ("zero-key", b"\x00")):
        for issuer in (ISSUER, ISSUER_HS):
            host = issuer.split("//")[1].split(".")[0]
            cases.append(
                Case(
                    f"kid-dev-null-HS256-{secret_name}-{host}",
                    hmac_token(secret, issuer=issuer, header={"kid": "../../dev/null"}),
                )
            )
    cases.append(
        Case(
            "kid-sql-HS256-known-secret",
            hmac_token(b"c2VjcmV0", issuer=ISSUER_HS, header={"kid": "x' UNION SELECT 'c2VjcmV0' --"}),
        )
    )
    return cases


def _self_signed_cert_der(key: Key) -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(private, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def real_key_header_cases() -> list[Case]:
    """RFC 8725 §3.10: ``jwk``/``jku``/``x5u``/``x5c`` in a token the REAL key signed (the members
    describe that same key): refused by default, accepted with ``Issuer.allow_key_headers``."""
    k = keys()
    cert = base64.b64encode(_self_signed_cert_der(k.es)).decode()
    rs_jwk = k.rs.as_dict(private=False)
    return [
        Case("jwk-real-key", make(header={"jwk": k.es.as_dict(private=False)})),
        Case("jku-issuer-jwks", make(header={"jku": "https://issuer.test/.well-known/jwks.json"})),
        Case("x5u-issuer-cert", make(header={"x5u": "https://issuer.test/cert.pem"})),
        Case("x5c-real-key-cert", make(header={"x5c": [cert]})),
        Case("jwk-real-key-RS256", make(ISSUER_RS, header={"jwk": rs_jwk})),
        Case("jku-HS256", hmac_token(hs_secret(), issuer=ISSUER_HS, header={"jku": "https://hs.issuer.test/j"})),
    ]


def header_key_cases() -> list[Case]:
    """RFC 8725 §3.10 / CVE-2018-0114 style: keys named or carried by the token itself
    (jwk, jku, x5u, x5c) are never trusted; each token is signed by the attacker's key."""
    k = keys()
    attacker = k.attacker_es
    attacker_jwk = attacker.as_dict(private=False)
    real_jwk = k.es.as_dict(private=False)
    cert = base64.b64encode(_self_signed_cert_der(attacker)).decode()
    cases: list[Case] = []
    for kid_name, kid in (("real-kid", "es-1"), ("attacker-kid", "attacker-1"), ("no-kid", DROP)):
        cases += [
            Case(f"embedded-jwk-{kid_name}", make(header={"jwk": attacker_jwk, "kid": kid}, key=attacker)),
            Case(
                f"jku-attacker-{kid_name}",
                make(header={"jku": "https://attacker.test/jwks.json", "kid": kid}, key=attacker),
            ),
            Case(
                f"x5u-attacker-{kid_name}",
                make(header={"x5u": "https://attacker.test/cert.pem", "kid": kid}, key=attacker),
            ),
            Case(f"x5c-self-signed-{kid_name}", make(header={"x5c": [cert], "kid": kid}, key=attacker)),
        ]
    cases += [
        Case(
            "embedded-jwk-claims-real-key-but-attacker-signed", make(header={"jwk": real_jwk}, key=attacker)
        ),
        Case(
            "embedded-jwk-HS256-oct-key",
            hmac_token(
                b"attacker-secret-attacker-secret!",
                header={"jwk": {"kty": "oct", "k": b64url(b"attacker-secret-attacker-secret!")}},
            ),
        ),
        Case(
            "jku-issuer-host-userinfo-trick",
            make(header={"jku": "https://issuer.test@attacker.test/jwks.json"}, key=attacker),
        ),
        Case(
            "jku-issuer-prefix-trick",
            make(header={"jku": "https://issuer.test.attacker.test/jwks.json"}, key=attacker),
        ),
        Case(
            "jku-same-issuer-path",
            make(header={"jku": "https://issuer.test/.well-known/jwks.json"}, key=attacker),
        ),
        Case(
            "x5c-with-x5t-attacker", make(header={"x5c": [cert], "x5t#S256": b64url(b"x" * 32)}, key=attacker)
        ),
        Case(
            "jwk-and-jku-and-x5u-together",
            make(
                header={
                    "jwk": attacker_jwk,
                    "jku": "https://attacker.test/jwks.json",
                    "x5u": "https://attacker.test/c.pem",
                    "x5c": [cert],
                },
                key=attacker,
            ),
        ),
    ]
    return cases


def crit_cases() -> list[Case]:
    """RFC 7515 §4.1.11: an unknown critical extension makes the JWS invalid; RFC 7797 ``b64``."""
    head = baseline_header()
    body = json_bytes(baseline_claims())
    # RFC 7797 unencoded payload: the signing input is the header segment "." the raw payload.
    b64_head = {**head, "b64": False, "crit": ["b64"]}
    h = b64url(json_bytes(b64_head))
    sig = sign_raw(json_bytes(b64_head), b"", keys().es, "ES256").split(".")[2]  # any signature
    from joserfc.jws import JWSRegistry

    detached_sig = b64url(JWSRegistry.algorithms["ES256"].sign(f"{h}.".encode() + body, keys().es))
    return [
        Case("crit-unknown-extension", make(header={"crit": ["x-unknown"], "x-unknown": 1})),
        Case("crit-unknown-not-present", make(header={"crit": ["x-unknown"]})),
        Case("crit-exp", make(header={"crit": ["exp"], "exp": int(NOW) + 300})),
        Case("crit-empty-list", make(header={"crit": []})),
        Case("crit-registered-alg", make(header={"crit": ["alg"]})),
        Case("crit-registered-kid", make(header={"crit": ["kid"]})),
        Case("crit-string-not-list", make(header={"crit": "x-unknown"})),
        Case("crit-null", make(header={"crit": None})),
        Case("crit-list-of-int", make(header={"crit": [1]})),
        Case("crit-duplicate-names", make(header={"crit": ["x-a", "x-a"], "x-a": 1})),
        Case("b64-false-without-crit", make(header={"b64": False})),
        Case("b64-true-with-crit", make(header={"b64": True, "crit": ["b64"]})),
        Case("b64-false-with-crit-encoded-payload", make(header={"b64": False, "crit": ["b64"]})),
        Case("b64-false-detached-payload", f"{h}..{sig}"),
        Case("b64-false-detached-real-signature-over-raw-payload", f"{h}..{detached_sig}"),
        Case("b64-string-false", make(header={"b64": "false", "crit": ["b64"]})),
    ]


def time_cases() -> list[Case]:
    """RFC 7519 §4.1.4-4.1.6 and §2 NumericDate: every malformed or failing time claim."""
    now = int(NOW)
    too_big = "9" * 5000  # beyond Python's int-from-string digit limit: must not become a 500
    payload = functools.partial(claims_bytes, ISSUER)
    cases = [
        Case("expired-long-ago", make(claims={"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200})),
        Case(
            "expired-just-past-leeway",
            make(claims={"exp": now - int(LEEWAY), "iat": now - 300, "nbf": now - 300}),
        ),
        Case("exp-zero", make(claims={"exp": 0})),
        Case("exp-missing", make(claims={"exp": DROP})),
        Case("exp-null", make(claims={"exp": None})),
        Case("nbf-in-future", make(claims={"nbf": now + 3600})),
        Case("nbf-just-past-leeway", make(claims={"nbf": now + int(LEEWAY) + 1})),
        Case("iat-in-future", make(claims={"iat": now + 3600, "nbf": DROP, "exp": now + 3900})),
        Case("exp-before-iat", make(claims={"iat": now, "exp": now - 5})),
        Case("exp-equals-iat", make(claims={"iat": now - 10, "exp": now - 10})),
        Case("exp-year-9999", make(claims={"exp": 253402300799})),
        Case("exp-1e20", make(claims={"exp": 1e20})),
        Case("exp-10-pow-30", make(claims={"exp": 10**30})),
        Case("exp-beyond-2-pow-53", make(claims={"exp": 2**53 + 1})),
        Case("lifetime-over-max", make(claims={"exp": now + int(MAX_LIFETIME) + int(LEEWAY) + 60})),
        Case("lifetime-over-max-without-iat", make(claims={"exp": now + int(MAX_LIFETIME) * 2, "iat": DROP})),
        Case("exp-negative", make(claims={"exp": -1})),
        Case("nbf-negative", make(claims={"nbf": -1})),
        Case("iat-negative", make(claims={"iat": -1})),
        Case("exp-negative-zero-float", make(claims={"exp": -0.0})),
        Case("exp-string-digits", make(claims={"exp": str(now + 300)})),
        Case("exp-string-iso", make(claims={"exp": "2027-01-15T08:00:00Z"})),
        Case("nbf-string", make(claims={"nbf": str(now)})),
        Case("iat-string", make(claims={"iat": str(now)})),
        Case("exp-true", make(claims={"exp": True})),
        Case("exp-false", make(claims={"exp": False})),
        Case("nbf-false", make(claims={"nbf": False})),
        Case("iat-true", make(claims={"iat": True})),
        Case("exp-list", make(claims={"exp": [now + 300]})),
        Case("exp-object", make(claims={"exp": {"$date": now + 300}})),
        Case("nbf-null", make(claims={"nbf": None})),
        Case("iat-null", make(claims={"iat": None})),
        Case("auth-time-string", make(claims={"auth_time": "yesterday"})),
        Case("auth-time-nan", make_raw(header_bytes(), splice(payload(), '"auth_time":NaN'))),
        Case("exp-NaN-literal", make_raw(header_bytes(), splice(payload(exp=DROP), '"exp":NaN'))),
        Case("exp-Infinity-literal", make_raw(header_bytes(), splice(payload(exp=DROP), '"exp":Infinity'))),
        Case(
            "exp-minus-Infinity-literal",
            make_raw(header_bytes(), splice(payload(exp=DROP), '"exp":-Infinity')),
        ),
        Case(
            "nbf-minus-Infinity-literal",
            make_raw(header_bytes(), splice(payload(nbf=DROP), '"nbf":-Infinity')),
        ),
        Case("iat-NaN-literal", make_raw(header_bytes(), splice(payload(iat=DROP), '"iat":NaN'))),
        Case(
            "exp-1e400-overflows-to-inf", make_raw(header_bytes(), splice(payload(exp=DROP), '"exp":1e400'))
        ),
        Case("nbf-minus-1e400", make_raw(header_bytes(), splice(payload(nbf=DROP), '"nbf":-1e400'))),
        Case(
            "exp-5000-digit-integer", make_raw(header_bytes(), splice(payload(exp=DROP), f'"exp":{too_big}'))
        ),
        Case(
            "exp-leading-zero-number",
            make_raw(header_bytes(), splice(payload(exp=DROP), f'"exp":0{now + 300}')),
        ),
        Case("exp-hex-number", make_raw(header_bytes(), splice(payload(exp=DROP), '"exp":0x6B49D200'))),
        Case("exp-plus-sign", make_raw(header_bytes(), splice(payload(exp=DROP), f'"exp":+{now + 300}'))),
    ]
    return cases


#: Valid NumericDates (RFC 7519 §2: "a JSON numeric value ... non-integer values can be
#: represented"): these must PASS, so the refusals above are about validity, not about type.
VALID_TIME_VARIANTS: Final[dict[str, dict[str, Any]]] = {
    "exp-float-with-fraction": {"exp": NOW + 300.5},
    "iat-float-with-fraction": {"iat": NOW - 0.25},
    "nbf-float-with-fraction": {"nbf": NOW - 10.75},
    "all-floats": {"exp": NOW + 120.125, "iat": NOW - 1.5, "nbf": NOW - 1.5},
    "exp-within-leeway": {"exp": int(NOW) - int(LEEWAY) + 1, "iat": int(NOW) - 300, "nbf": int(NOW) - 300},
    "nbf-within-leeway": {"nbf": int(NOW) + int(LEEWAY) - 1},
    "iat-within-leeway": {"iat": int(NOW) + int(LEEWAY) - 1, "nbf": DROP},
    "no-nbf-no-iat": {"nbf": DROP, "iat": DROP},
}
VALID_TIME_RAW: Final[dict[str, str]] = {
    "exp-exponent-notation": f'"exp":{(NOW + 300) / 1e9}e9',
    "exp-float-dot-zero": f'"exp":{int(NOW) + 300}.0',
}


def issuer_audience_cases() -> list[Case]:
    """RFC 7519 §4.1.1 (exact string match) and §4.1.3 (aud must name us)."""
    return [
        Case("iss-wrong", make(claims={"iss": "https://evil.test"})),
        Case("iss-missing", make(claims={"iss": DROP})),
        Case("iss-null", make(claims={"iss": None})),
        Case("iss-empty", make(claims={"iss": ""})),
        Case("iss-int", make(claims={"iss": 1})),
        Case("iss-list", make(claims={"iss": [ISSUER]})),
        Case("iss-object", make(claims={"iss": {"url": ISSUER}})),
        Case("iss-upper-case", make(claims={"iss": ISSUER.upper()})),
        Case("iss-host-case-changed", make(claims={"iss": "https://Issuer.test"})),
        Case("iss-trailing-slash", make(claims={"iss": ISSUER + "/"})),
        Case("iss-leading-space", make(claims={"iss": " " + ISSUER})),
        Case("iss-trailing-nul", make(claims={"iss": ISSUER + "\x00"})),
        Case("iss-http-scheme", make(claims={"iss": "http://issuer.test"})),
        Case("iss-default-port", make(claims={"iss": "https://issuer.test:443"})),
        Case("iss-userinfo-trick", make(claims={"iss": "https://issuer.test@evil.test"})),
        Case("iss-suffix-trick", make(claims={"iss": "https://issuer.test.evil.test"})),
        Case("iss-other-trusted-issuer", make(claims={"iss": ISSUER_RS})),
        Case("aud-wrong", make(claims={"aud": "other-api"})),
        Case("aud-missing", make(claims={"aud": DROP})),
        Case("aud-null", make(claims={"aud": None})),
        Case("aud-empty-string", make(claims={"aud": ""})),
        Case("aud-int", make(claims={"aud": 1})),
        Case("aud-true", make(claims={"aud": True})),
        Case("aud-object", make(claims={"aud": {"api": True}})),
        Case("aud-list-without-ours", make(claims={"aud": ["other", "another"]})),
        Case("aud-empty-list", make(claims={"aud": []})),
        Case("aud-list-with-null", make(claims={"aud": [None]})),
        Case("aud-list-ours-and-null", make(claims={"aud": [AUDIENCE, None]})),
        Case("aud-list-ours-and-int", make(claims={"aud": [AUDIENCE, 1]})),
        Case("aud-nested-list", make(claims={"aud": [[AUDIENCE]]})),
        Case("aud-case-changed", make(claims={"aud": "API"})),
        Case("aud-trailing-space", make(claims={"aud": AUDIENCE + " "})),
        Case("aud-space-joined", make(claims={"aud": f"other {AUDIENCE}"})),
        Case("aud-comma-joined", make(claims={"aud": f"other,{AUDIENCE}"})),
    ]


def typ_cases() -> list[Case]:
    """RFC 8725 §3.11 / RFC 9068 §2.1: other JWT kinds must not pass as access tokens."""
    cases = [
        # Keycloak marks refresh/ID/offline tokens with a payload "typ" claim.
        Case("keycloak-refresh-token", make(ISSUER_RS, claims={"typ": "Refresh"})),
        Case("keycloak-offline-token", make(ISSUER_RS, claims={"typ": "Offline"})),
        Case("keycloak-id-token", make(ISSUER_RS, claims={"typ": "ID", "nonce": "n-1", "azp": "web"})),
        Case("keycloak-logout-token", make(ISSUER_RS, claims={"typ": "Logout"})),
        # Cognito marks them with token_use.
        Case("cognito-id-token", make(ISSUER_RS, claims={"token_use": "id"})),
        Case("cognito-refresh-token", make(ISSUER_RS, claims={"token_use": "refresh"})),
        # Header typ of JWTs that are never access tokens.
        Case(
            "dpop-proof",
            make(
                ISSUER_RS,
                header={"typ": "dpop+jwt", "jwk": {"kty": "EC"}},
                claims={"htm": "GET", "htu": "https://api.test/"},
            ),
        ),
        Case("dpop-proof-media-type", make(ISSUER_RS, header={"typ": "application/dpop+jwt"})),
        Case("dpop-proof-upper-case", make(ISSUER_RS, header={"typ": "DPOP+JWT"})),
        Case(
            "logout-token",
            make(
                ISSUER_RS,
                header={"typ": "logout+jwt"},
                claims={"events": {"http://schemas.openid.net/event/backchannel-logout": {}}},
            ),
        ),
        Case("security-event-token", make(ISSUER_RS, header={"typ": "secevent+jwt"})),
        Case("refresh-token-typ", make(ISSUER_RS, header={"typ": "refresh+jwt"})),
        Case("id-token-typ", make(ISSUER_RS, header={"typ": "id_token+jwt"})),
        Case("typ-int", make(ISSUER_RS, header={"typ": 1})),
        Case("typ-list", make(ISSUER_RS, header={"typ": ["at+jwt"]})),
        # An issuer that requires at+jwt refuses everything else, including no typ at all.
        Case("at-jwt-issuer-typ-JWT", make(header={"typ": "JWT"})),
        Case("at-jwt-issuer-typ-missing", make(header={"typ": DROP})),
        Case("at-jwt-issuer-typ-null", make(header={"typ": None})),
        Case("at-jwt-issuer-typ-empty", make(header={"typ": ""})),
        Case("at-jwt-issuer-typ-application-jwt", make(header={"typ": "application/jwt"})),
        Case("at-jwt-issuer-typ-with-parameter", make(header={"typ": "at+jwt; charset=utf-8"})),
        Case("at-jwt-issuer-typ-padded", make(header={"typ": " at+jwt"})),
        Case("at-jwt-issuer-typ-in-payload-only", make(header={"typ": DROP}, claims={"typ": "at+jwt"})),
        Case(
            "at-jwt-issuer-id-token", make(header={"typ": "JWT"}, claims={"nonce": "n", "aud": "web-client"})
        ),
        Case("at-jwt-issuer-refresh-claim", make(claims={"typ": "Refresh"})),
    ]
    return cases


#: typ spellings RFC 7515 §4.1.9 says are the same media type: must pass.
VALID_TYP_VARIANTS: Final = ("at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT")


def signature_cases() -> list[Case]:
    """ECDSA range and encoding (CVE-2022-21449 psychic signatures), RSA and HMAC lengths."""
    k = keys()
    es_token = make()
    raw = signature_of(es_token)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    n = P256_N
    other = make(claims={"sub": "admin"})
    rs_token = make(ISSUER_RS)
    rs_sig = signature_of(rs_token)
    hs_token = make(ISSUER_HS)
    hs_sig = signature_of(hs_token)
    cases = [
        Case("ecdsa-r-s-zero-psychic", with_signature(es_token, bytes(64))),
        Case("ecdsa-r-zero", with_signature(es_token, ecdsa_raw(0, s))),
        Case("ecdsa-s-zero", with_signature(es_token, ecdsa_raw(r, 0))),
        Case("ecdsa-r-s-zero-other-claims", with_signature(other, bytes(64))),
        Case("ecdsa-r-equals-n", with_signature(es_token, ecdsa_raw(n, s))),
        Case("ecdsa-s-equals-n", with_signature(es_token, ecdsa_raw(r, n))),
        Case("ecdsa-r-s-equal-n", with_signature(es_token, ecdsa_raw(n, n))),
        Case("ecdsa-r-n-plus-one", with_signature(es_token, ecdsa_raw(n + 1, s))),
        Case("ecdsa-s-n-plus-one", with_signature(es_token, ecdsa_raw(r, n + 1))),
        Case("ecdsa-all-ff", with_signature(es_token, b"\xff" * 64)),
        Case("ecdsa-r-one-s-one", with_signature(es_token, ecdsa_raw(1, 1))),
        Case("ecdsa-der-encoded-valid", with_signature(es_token, ecdsa_der(raw))),
        Case("ecdsa-der-encoded-zero", with_signature(es_token, encode_dss_signature(0, 0))),
        Case("ecdsa-truncated-63", with_signature(es_token, raw[:63])),
        Case("ecdsa-truncated-32", with_signature(es_token, raw[:32])),
        Case("ecdsa-extended-65", with_signature(es_token, raw + b"\x00")),
        Case("ecdsa-leading-zero-65", with_signature(es_token, b"\x00" + raw)),
        Case("ecdsa-p384-size-96", with_signature(es_token, raw + bytes(32))),
        Case("ecdsa-p521-size-132", with_signature(es_token, raw + bytes(68))),
        Case("ecdsa-single-byte", with_signature(es_token, b"\x00")),
        Case("ecdsa-swapped-r-s", with_signature(es_token, raw[32:] + raw[:32])),
        Case("ecdsa-transplanted-to-other-claims", with_signature(other, raw)),
        Case("ecdsa-one-bit-flipped", with_signature(es_token, raw[:-1] + bytes([raw[-1] ^ 1]))),
        Case("ecdsa-signature-of-other-issuer-key", with_signature(es_token, signature_of(make(key=k.es_b)))),
        Case("signature-empty", with_signature(es_token, "")),
        Case("signature-stripped-no-dot", es_token.rsplit(".", 1)[0]),
        Case("rsa-empty", with_signature(rs_token, "")),
        Case("rsa-zero-256", with_signature(rs_token, bytes(256))),
        Case("rsa-all-ff-above-modulus", with_signature(rs_token, b"\xff" * 256)),
        Case("rsa-truncated", with_signature(rs_token, rs_sig[:-1])),
        Case("rsa-extended", with_signature(rs_token, rs_sig + b"\x00")),
        Case("rsa-leading-zero", with_signature(rs_token, b"\x00" + rs_sig)),
        Case("rsa-one", with_signature(rs_token, (1).to_bytes(256, "big"))),
        Case(
            "rsa-pss-signature-under-RS256",
            with_signature(rs_token, signature_of(make(ISSUER_RS, key=k.rs, alg="PS256"))),
        ),
        Case("rsa-transplanted", with_signature(make(ISSUER_RS, claims={"sub": "admin"}), rs_sig)),
        Case("hmac-empty", with_signature(hs_token, "")),
        Case("hmac-truncated-16", with_signature(hs_token, hs_sig[:16])),
        Case("hmac-truncated-31", with_signature(hs_token, hs_sig[:31])),
        Case("hmac-extended", with_signature(hs_token, hs_sig + b"\x00")),
        Case("hmac-zero", with_signature(hs_token, bytes(32))),
        Case("hmac-wrong-secret", hmac_token(b"w" * 32, issuer=ISSUER_HS)),
        Case("hmac-transplanted", with_signature(make(ISSUER_HS, claims={"sub": "admin"}), hs_sig)),
    ]
    return cases


def _oversize(where: str, size: int) -> str:
    """A correctly signed token of exactly ``size`` characters, padded in the header or payload."""

    def build(pad: int) -> str:
        if where == "header":
            return make(header={"x-pad": "p" * pad})
        return make(claims={"x-pad": "p" * pad})

    pad = 0
    token = build(pad)
    while len(token) < size:  # base64 grows 4 chars per 3 bytes: converge by steps
        pad += max(1, (size - len(token)) * 3 // 4)
        token = build(pad)
    while len(token) > size:
        pad -= 1
        token = build(pad)
    return token


def structure_cases() -> list[Case]:
    """Compact serialization shape (RFC 7515 §7.1), size caps, nesting, duplicates, non-objects."""
    good = make()
    h, p, s = good.split(".")
    head = header_bytes()
    body = claims_bytes()
    over = MAX_TOKEN_BYTES + 1
    array_depth = 2800  # "[" + "]" per level: fits the size cap after base64
    object_depth = 1100  # '{"":' + "}" per level
    cases = [
        Case("one-segment", h),
        Case("two-segments", f"{h}.{p}"),
        Case("two-segments-trailing-dot", f"{h}.{p}."),
        Case("four-segments", f"{h}.{p}.{s}.{s}"),
        Case("four-segments-empty-last", f"{h}.{p}.{s}."),
        Case("five-segments-jwe-shape", f"{h}.{p}.{s}.{p}.{s}"),
        Case(
            "five-segments-jwe-header", f"{b64url(json_bytes({'alg': 'dir', 'enc': 'A256GCM'}))}..{p}.{p}.{s}"
        ),
        Case("six-segments", ".".join([h, p, s, h, p, s])),
        Case("empty-header", f".{p}.{s}"),
        Case("empty-payload", f"{h}..{s}"),
        Case("only-dots", ".."),
        Case("four-dots", "...."),
        Case("single-char", "a"),
        Case("header-over-size-cap", _oversize("header", over)),
        Case("payload-over-size-cap", _oversize("payload", over)),
        Case("far-over-size-cap", _oversize("payload", 64 * 1024)),
        Case("deep-arrays-10k-in-payload", make_raw(head, splice(body, '"x":' + nested(10_000)))),
        Case("deep-arrays-within-cap-in-payload", make_raw(head, splice(body, '"x":' + nested(array_depth)))),
        Case(
            "deep-objects-within-cap-in-payload",
            make_raw(head, splice(body, '"x":' + nested(object_depth, '{"":', "}"))),
        ),
        Case("deep-arrays-within-cap-in-header", make_raw(splice(head, '"x":' + nested(array_depth)), body)),
        Case(
            "deep-objects-within-cap-in-header",
            make_raw(splice(head, '"x":' + nested(object_depth, '{"":', "}")), body),
        ),
        Case(
            "deep-objects-10k-in-header", make_raw(splice(head, '"x":' + nested(10_000, '{"":', "}")), body)
        ),
        # one past the gate's own bound (32 levels, the outer object counted), whatever the
        # interpreter's recursion limit would allow
        Case("arrays-one-past-depth-bound-in-payload", make_raw(head, splice(body, '"x":' + nested(32)))),
        Case(
            "objects-one-past-depth-bound-in-payload",
            make_raw(head, splice(body, '"x":' + nested(32, '{"":', "}"))),
        ),
        Case("arrays-one-past-depth-bound-in-header", make_raw(splice(head, '"x":' + nested(32)), body)),
        # RFC 7515 §4 / RFC 7519 §4: duplicate member names MUST be rejected (or the last taken);
        # a verifier and a downstream parser that pick different ones is a classic bypass.
        Case(
            "duplicate-alg-none-then-ES256",
            make_raw(b'{"alg":"none","alg":"ES256","typ":"at+jwt","kid":"es-1"}', body),
        ),
        Case(
            "duplicate-alg-ES256-twice",
            make_raw(b'{"alg":"ES256","alg":"ES256","typ":"at+jwt","kid":"es-1"}', body),
        ),
        Case("duplicate-kid", make_raw(b'{"alg":"ES256","kid":"nope","kid":"es-1","typ":"at+jwt"}', body)),
        Case(
            "duplicate-typ", make_raw(b'{"alg":"ES256","kid":"es-1","typ":"dpop+jwt","typ":"at+jwt"}', body)
        ),
        Case("duplicate-sub", make_raw(head, splice(claims_bytes(sub=DROP), '"sub":"user-1","sub":"admin"'))),
        Case(
            "duplicate-exp",
            make_raw(head, splice(claims_bytes(exp=DROP), f'"exp":{int(NOW) - 9999},"exp":{int(NOW) + 300}')),
        ),
        Case(
            "duplicate-iss",
            make_raw(head, splice(claims_bytes(iss=DROP), f'"iss":"https://evil.test","iss":"{ISSUER}"')),
        ),
        Case("duplicate-aud", make_raw(head, splice(claims_bytes(aud=DROP), '"aud":"other","aud":"api"'))),
        Case(
            "duplicate-scope",
            make_raw(head, splice(claims_bytes(scope=DROP), '"scope":"read","scope":"admin"')),
        ),
        Case("duplicate-sub-escaped-name", make_raw(head, splice(claims_bytes(), '"s\\u0075b":"admin"'))),
        Case(
            "duplicate-in-nested-object",
            make_raw(head, splice(claims_bytes(), '"cnf":{"jkt":"a","jkt":"b"}')),
        ),
        Case("header-array", make_raw(b'[{"alg":"ES256","kid":"es-1","typ":"at+jwt"}]', body)),
        Case("header-string", make_raw(b'"ES256"', body)),
        Case("header-number", make_raw(b"1", body)),
        Case("header-null", make_raw(b"null", body)),
        Case("header-true", make_raw(b"true", body)),
        Case("header-empty-object", make_raw(b"{}", body)),
        Case("header-not-json", make_raw(b"alg=ES256", body)),
        Case("header-truncated-json", make_raw(head[:-1], body)),
        Case("header-trailing-garbage", make_raw(head + b"x", body)),
        Case("header-two-objects", make_raw(head + head, body)),
        Case("payload-array", make_raw(head, b"[" + body + b"]")),
        Case("payload-string", make_raw(head, json_bytes(body.decode()))),
        Case("payload-number", make_raw(head, b"1800000300")),
        Case("payload-null", make_raw(head, b"null")),
        Case("payload-empty", make_raw(head, b"")),
        Case("payload-empty-object", make_raw(head, b"{}")),
        Case("payload-truncated-json", make_raw(head, body[:-1])),
        Case("payload-trailing-garbage", make_raw(head, body + b"}")),
        Case("payload-two-objects", make_raw(head, body + body)),
        Case("payload-single-quotes", make_raw(head, body.replace(b'"', b"'"))),
        Case("payload-trailing-comma", make_raw(head, body[:-1] + b",}")),
        Case("payload-comment", make_raw(head, b"/*x*/" + body)),
    ]
    return cases


def _with_b64_chars(token: str) -> str:
    """Re-sign until the signature segment holds a '-' or '_' (ES256 signatures are randomized)."""
    for _ in range(200):
        if "-" in token.split(".")[2] or "_" in token.split(".")[2]:
            return token
        token = make()
    raise AssertionError("no '-' or '_' in 200 signatures")  # pragma: no cover


def encoding_cases() -> list[Case]:
    """Base64url strictness (RFC 7515 §2 / RFC 4648 §5, no padding) and JSON text encoding
    (RFC 8259 §8.1: UTF-8 only, no BOM; RFC 7493 I-JSON: no lone surrogates)."""
    head = header_bytes()
    body = claims_bytes()
    token = _with_b64_chars(make())
    h, p, s = token.split(".")
    std = token.replace("-", "+").replace("_", "/")
    payload = functools.partial(claims_bytes, ISSUER)
    tokens: dict[str, str] = {
        "padding-on-header": f"{h}{'=' * (-len(h) % 4) or '='}.{p}.{s}",
        "padding-on-payload": f"{h}.{p}{'=' * (-len(p) % 4) or '='}.{s}",
        "padding-on-signature": f"{h}.{p}.{s}{'=' * (-len(s) % 4) or '='}",
        "padding-double-on-signature": f"{h}.{p}.{s}==",
        "standard-base64-plus-slash": std,
        "standard-base64-in-signature-only": f"{h}.{p}.{s.replace('-', '+').replace('_', '/')}",
        "tilde-in-signature": f"{h}.{p}.{s[:-1]}~",
        "space-inside": f"{h}.{p} .{s}",
        "tab-inside": f"{h}.{p}\t.{s}",
        "newline-inside": f"{h}.\n{p}.{s}",
        "crlf-inside": f"{h}.{p}\r\n.{s}",
        "trailing-newline": f"{token}\n",
        "non-ascii-letter": f"{h}.{p}.{s[:-1]}é",
        "percent-encoded-dot": f"{h}%2E{p}%2E{s}",
        "quoted-token": f'"{token}"',
        "signature-non-canonical-last-char": _non_canonical(token),
    }
    cases = [case_for_bearer(name, value) for name, value in tokens.items()]
    raw = {
        "payload-utf16-le": make_raw(head, body.decode().encode("utf-16-le")),
        "payload-utf16-with-bom": make_raw(head, body.decode().encode("utf-16")),
        "payload-utf16-be": make_raw(head, body.decode().encode("utf-16-be")),
        "payload-utf32": make_raw(head, body.decode().encode("utf-32")),
        "header-utf16": make_raw(head.decode().encode("utf-16"), body),
        "header-utf32-le": make_raw(head.decode().encode("utf-32-le"), body),
        "payload-utf8-bom": make_raw(head, b"\xef\xbb\xbf" + body),
        "header-utf8-bom": make_raw(b"\xef\xbb\xbf" + head, body),
        "lone-high-surrogate-in-sub": make_raw(head, splice(payload(sub=DROP), '"sub":"admin\\ud800"')),
        "lone-low-surrogate-in-sub": make_raw(head, splice(payload(sub=DROP), '"sub":"\\udc00admin"')),
        "reversed-surrogate-pair": make_raw(head, splice(payload(sub=DROP), '"sub":"\\ude00\\ud83d"')),
        "lone-surrogate-upper-hex": make_raw(head, splice(payload(sub=DROP), '"sub":"\\uD800"')),
        "lone-surrogate-in-member-name": make_raw(head, splice(payload(), '"\\ud800":1')),
        "lone-surrogate-in-custom-claim": make_raw(head, splice(payload(), '"x":["a",{"b":"\\udfff"}]')),
        "lone-surrogate-in-kid": make_raw(splice(header_bytes(kid=DROP), '"kid":"es-1\\ud800"'), body),
        "lone-surrogate-in-iss": make_raw(head, splice(payload(iss=DROP), f'"iss":"{ISSUER}\\ud800"')),
        "lone-surrogate-deeply-nested": make_raw(
            head, splice(payload(), '"x":' + nested(500, inner='"\\ud800"'))
        ),
        "cesu8-surrogate-bytes": make_raw(
            head, splice(payload(sub=DROP), '"sub":"').rstrip(b"}") + b'\xed\xa0\x80"}'
        ),
        "raw-nul-in-string": make_raw(head, body.replace(b'"user-1"', b'"user-1\x00admin"')),
        "raw-nul-between-members": make_raw(head, body.replace(b",", b",\x00", 1)),
        "raw-nul-after-object": make_raw(head, body + b"\x00"),
        "raw-nul-in-header": make_raw(head.replace(b'"es-1"', b'"es-1\x00"'), body),
        "raw-control-char-in-string": make_raw(head, body.replace(b'"user-1"', b'"user\x01"')),
        "raw-newline-in-string": make_raw(head, body.replace(b'"user-1"', b'"user\n1"')),
        "escaped-nul-in-iss": make_raw(head, splice(payload(iss=DROP), f'"iss":"{ISSUER}\\u0000"')),
        "invalid-utf8-ff": make_raw(head, body.replace(b'"user-1"', b'"user\xff"')),
        "invalid-utf8-overlong-slash": make_raw(head, body.replace(b'"user-1"', b'"user\xc0\xaf"')),
        "invalid-utf8-truncated-sequence": make_raw(head, body.replace(b'"user-1"', b'"user\xe2\x82"')),
        "invalid-utf8-latin1-e-acute": make_raw(head, body.replace(b'"user-1"', b'"us\xe9r"')),
        "invalid-utf8-in-header": make_raw(head.replace(b'"at+jwt"', b'"at+jwt\xff"'), body),
        "invalid-utf8-continuation-only": make_raw(head, body.replace(b'"user-1"', b'"\x80"')),
    }
    cases += [Case(name, value) for name, value in raw.items()]
    return cases


def _non_canonical(token: str) -> str:
    """Change the unused low bits of the last base64url character (RFC 4648 §3.5 canonical form):
    the same bytes, another string. A 64-byte signature is 86 chars: the last one carries 4 spare bits."""
    h, p, s = token.split(".")
    assert len(s) == 86
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(s[-1])
    return f"{h}.{p}.{s[:-1]}{alphabet[index | 1]}"  # canonical: the low 4 bits are 0


def all_token_cases() -> list[Case]:
    """Every token attack: a seed corpus for fuzzers."""
    return [
        *alg_cases(),
        *key_confusion_cases(),
        *kid_cases(),
        *header_key_cases(),
        *crit_cases(),
        *time_cases(),
        *issuer_audience_cases(),
        *typ_cases(),
        *signature_cases(),
        *structure_cases(),
        *encoding_cases(),
    ]


# =============================================================================================
# Acceptance oracle for the fuzzers, written apart from the library: accept ⇒ this is True.
# =============================================================================================
_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_-]*")
_NEVER_ACCESS_HEADER_TYP: Final = {"dpop+jwt", "secevent+jwt", "logout+jwt", "refresh+jwt", "id_token+jwt"}
_NEVER_ACCESS_CLAIMS: Final = {"typ": {"id", "refresh", "offline", "logout"}, "token_use": {"id", "refresh"}}


def _decode_segment(segment: str) -> bytes:
    if _SEGMENT_RE.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def _numeric_date(value: Any) -> float | None:
    """A NumericDate or None when it is not one (RFC 7519 §2)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not (0 <= value <= 2**53):  # also False for NaN
        return None
    return float(value)


def _signature_ok(issuer: str, signing_input: bytes, signature: bytes) -> bool:
    if issuer == ISSUER_HS:
        expected = hmac.new(hs_secret(), signing_input, hashlib.sha256).digest()
        return hmac.compare_digest(expected, signature)
    public = issuer_key(issuer).public_key
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            if not (0 < r < P256_N and 0 < s < P256_N):
                return False
            public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:  # pragma: no cover - the trust set holds no other key type
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _header_ok(issuer: str, header: dict[str, Any]) -> bool:
    if header.get("alg") != _ISSUER_ALG[issuer] or "crit" in header or "b64" in header:
        return False
    if any(name in header for name in ("jku", "jwk", "x5u", "x5c")):  # RFC 8725 §3.10, default
        return False
    if "kid" in header and header["kid"] != _ISSUER_KID[issuer]:
        return False
    typ = header.get("typ")
    if typ is not None and not isinstance(typ, str):
        return False
    media = None if typ is None else typ.lower().removeprefix("application/")
    if media in _NEVER_ACCESS_HEADER_TYP:
        return False
    return issuer not in (ISSUER, ISSUER_B) or media == "at+jwt"


def _times_ok(claims: dict[str, Any], now: float) -> bool:
    exp = _numeric_date(claims.get("exp"))
    if exp is None or now >= exp + LEEWAY:
        return False
    for name in ("nbf", "iat", "auth_time"):
        if name in claims and _numeric_date(claims[name]) is None:
            return False
    nbf, iat = _numeric_date(claims.get("nbf")), _numeric_date(claims.get("iat"))
    if nbf is not None and nbf > now + LEEWAY:
        return False
    if iat is not None and (iat > now + LEEWAY or exp <= iat):
        return False
    # exp - iat are both the issuer's clock: no leeway; exp - now mixes clocks: leeway
    return exp - iat <= MAX_LIFETIME if iat is not None else exp - now <= MAX_LIFETIME + LEEWAY


def _claims_ok(issuer: str, claims: dict[str, Any], now: float) -> bool:
    aud = claims.get("aud")
    if not (
        aud == AUDIENCE
        or (isinstance(aud, list) and AUDIENCE in aud and all(isinstance(a, str) for a in aud))
    ):
        return False
    for name in ("sub", "jti", "scope", "acr", "client_id"):
        if claims.get(name) is not None and not isinstance(claims[name], str):
            return False
    for name in ("sub", "jti", "client_id"):
        if name in claims and not str(claims[name]).strip():
            return False
    for name, bad in _NEVER_ACCESS_CLAIMS.items():
        value = claims.get(name)
        if isinstance(value, str) and value.lower() in bad:
            return False
    return _times_ok(claims, now)


def _depth(value: Any) -> int:
    """Most arrays and objects open at once (iterative: no recursion limit involved)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def independently_valid(token: str, now: float = NOW) -> bool:
    """True only for a correctly signed compact JWS of a trusted issuer whose header and claims
    pass every check this suite's trust set demands. Necessary conditions only: the library may
    refuse more (NaN in a custom claim, lone surrogates), never accept more."""
    try:
        h64, p64, s64 = token.split(".")
        header = json.loads(_decode_segment(h64).decode("utf-8"), object_pairs_hook=_unique)
        claims = json.loads(_decode_segment(p64).decode("utf-8"), object_pairs_hook=_unique)
        signature = _decode_segment(s64)
    except (ValueError, UnicodeDecodeError, RecursionError, binascii.Error):
        return False
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return False
    if _depth(header) > 32 or _depth(claims) > 32:  # the gate's bound, outer object counted
        return False
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or issuer not in _ISSUER_ALG:
        return False
    return (
        _header_ok(issuer, header)
        and _claims_ok(issuer, claims, now)
        and _signature_ok(issuer, f"{h64}.{p64}".encode(), signature)
    )
