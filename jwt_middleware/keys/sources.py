"""Key source descriptors: where an issuer's verification keys come from (no I/O here)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from ..errors import ConfigError

__all__ = [
    "JWKSFile",
    "JWKSUrl",
    "KeySource",
    "OIDCDiscovery",
    "SharedSecret",
    "StaticKeys",
    "check_fetch_url",
    "is_loopback_host",
]

#: RFC 7518 §3.2: an HMAC key must be at least as long as the hash output; we ask 256 bits for all.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class StaticKeys:
    """Keys given in code: a JWKS mapping, one JWK mapping, a JSON string of either, or a PEM public key."""

    keys: Mapping[str, Any] | str | bytes

    def __post_init__(self) -> None:
        if not isinstance(self.keys, Mapping | str | bytes):
            raise ConfigError(
                f"StaticKeys.keys: {type(self.keys).__name__} given; pass a JWKS or JWK (a dict or its "
                "JSON text) or a PEM public key"
            )


@dataclass(frozen=True, slots=True)
class JWKSFile:
    """A JWKS document on disk, re-read like a remote set (so a rotated file is picked up)."""

    #: a str (a pathlib.Path is accepted and stored as its str)
    path: str

    def __post_init__(self) -> None:
        if not isinstance(self.path, str | os.PathLike) or not os.fspath(self.path):
            raise ConfigError(
                f"JWKSFile.path: {self.path!r} is not a file path; write e.g. JWKSFile('/etc/jwks.json')"
            )
        # a missing file is refused when the Authenticator is built (it is read then)
        object.__setattr__(self, "path", os.fspath(self.path))


@dataclass(frozen=True, slots=True)
class JWKSUrl:
    """A JWKS document served over HTTPS (plain HTTP only on loopback)."""

    url: str

    def __post_init__(self) -> None:
        check_fetch_url(self.url, "JWKSUrl.url")


@dataclass(frozen=True, slots=True)
class OIDCDiscovery:
    """OpenID Connect discovery: ``jwks_uri`` is read from ``<issuer>/.well-known/openid-configuration``.

    The document's ``issuer`` must equal the configured issuer exactly (OIDC Discovery §4.3).
    """

    url: str | None = None

    def __post_init__(self) -> None:
        if self.url is not None:
            check_fetch_url(self.url, "OIDCDiscovery.url")


@dataclass(frozen=True, slots=True, repr=False)
class SharedSecret:
    """An HMAC secret (HS256/384/512). At least 256 bits of key material, never a public key."""

    secret: bytes | str
    kid: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"SharedSecret(kid={self.kid!r}, secret=<{len(self.as_bytes())} bytes>)"

    def as_bytes(self) -> bytes:
        return self.secret.encode() if isinstance(self.secret, str) else self.secret

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes | str):
            raise ConfigError(
                f"SharedSecret.secret: {type(self.secret).__name__} given; use bytes "
                "(e.g. secrets.token_bytes(32)) or text"
            )
        raw = self.as_bytes()
        if len(raw) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"SharedSecret: {len(raw) * 8}-bit secret is too weak; use at least 256 random bits "
                "(e.g. secrets.token_bytes(32))"
            )
        if _looks_like_public_key(raw):
            raise ConfigError(
                "SharedSecret: this looks like a public key (PEM, JWK, OpenSSH, DER or an EC point), which "
                "would let anyone forge HS tokens; give the public key to StaticKeys and pin an asymmetric "
                "algorithm instead"
            )


KeySource = StaticKeys | JWKSFile | JWKSUrl | OIDCDiscovery | SharedSecret

#: OpenSSH public key lines (RFC 4253 §6.6 names; CVE-2022-29217 used one as an HMAC secret)
_OPENSSH_PREFIXES: Final = (b"ssh-", b"ecdsa-sha2-", b"sk-ssh-", b"sk-ecdsa-sha2-")
_EC_POINT_CURVES: Final = {65: ec.SECP256R1(), 97: ec.SECP384R1(), 133: ec.SECP521R1()}


def _looks_like_public_key(raw: bytes) -> bool:
    """Any encoding of a public key an attacker could also know (python-jose #414 used DER)."""
    text = raw.strip()
    if text.startswith((b"-----BEGIN", *_OPENSSH_PREFIXES)) or (text.startswith(b"{") and b'"kty"' in text):
        return True
    if raw[:1] == b"\x30":  # an ASN.1 SEQUENCE: SubjectPublicKeyInfo or PKCS#1 in DER
        try:
            load_der_public_key(raw)
            return True
        except (ValueError, TypeError, UnsupportedAlgorithm):
            pass
    curve = _EC_POINT_CURVES.get(len(raw))
    if curve is not None and raw[:1] == b"\x04":  # an uncompressed EC point (X9.62)
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, raw)
            return True
        except ValueError:
            pass
    return False


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fetch_url(url: str, option: str) -> None:
    """Refuse anything but https, or http on loopback (RFC 8725 §3.12 asks for TLS to the issuer)."""
    if not isinstance(url, str):
        raise ConfigError(f"{option}: {url!r} is not a URL; write e.g. 'https://idp.example/jwks'")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise ConfigError(f"{option}: {url!r} must be an https:// URL (plain http is allowed on loopback only)")
