"""Where the verify command's keys come from: JWKS files and URLs, PEM keys, shared secrets.

A shared secret is read from a file or an environment variable, never from the command line
(the process list and the shell history show every argument).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import re
import ssl
from collections.abc import Mapping
from typing import Any, Final

from joserfc.jwk import Key

from .config import HMAC_ALGORITHMS
from .keys.loader import import_pem
from .keys.sources import JWKSUrl, KeySource, SharedSecret, StaticKeys

__all__ = [
    "KeySpec",
    "Label",
    "UsageError",
    "jwks_source",
    "key_source",
    "read_bytes",
    "read_text",
    "tls_context",
]

#: largest key, secret or config file read (a JWKS of many RSA keys stays far below)
MAX_FILE_BYTES: Final = 1024 * 1024
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


class UsageError(Exception):
    """A bad argument or file found after parsing; printed as one line, exit code 2."""


@dataclasses.dataclass(frozen=True, slots=True)
class KeySpec:
    """Where one issuer's keys come from, as given (at most one source)."""

    jwks: str | None = None
    hs_secret_file: str | None = None
    hs_secret_env: str | None = None
    hs_kid: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Label:
    """How messages name a setting: ``--hs-secret-file`` on the command line, or
    ``--config FILE: [[issuer]] #2 hs_secret_file`` in a TOML file."""

    where: str = ""
    #: the command line's flag per field (a field not listed: ``--`` + kebab case); None: TOML keys
    flags: Mapping[str, str] | None = dataclasses.field(default_factory=dict)

    def name(self, field: str) -> str:
        if self.flags is None:
            return field
        return self.flags.get(field, "--" + field.replace("_", "-"))

    def __call__(self, field: str) -> str:
        return self.where + self.name(field)


def key_source(
    issuer: str, algorithms: tuple[str, ...], spec: KeySpec, label: Label
) -> tuple[KeySource | None, dict[str, Any]]:
    """The key source ``spec`` names and its description; None (OIDC discovery) when it names none."""
    given = [n for n in ("jwks", "hs_secret_file", "hs_secret_env") if getattr(spec, n) is not None]
    if len(given) > 1:
        raise UsageError(f"{label(given[0])} and {label.name(given[1])}: give one source of keys")
    secret = given and given[0] != "jwks"
    if spec.hs_kid is not None and not secret:
        raise UsageError(f"{label('hs_kid')}: names the key id of a shared secret; give the secret too")
    if not given and any(a in HMAC_ALGORITHMS for a in algorithms):
        file, env = label.name("hs_secret_file"), label.name("hs_secret_env")
        wanted = f"give {file} PATH or {env} NAME"
        raise UsageError(f"{label('algorithms')}: HS* needs the shared secret; {wanted}")
    if spec.jwks is not None:
        return jwks_source(spec.jwks, label("jwks"))
    if spec.hs_secret_file is not None:
        raw = read_bytes(spec.hs_secret_file, label("hs_secret_file"))
        return _shared_secret(raw, spec.hs_kid, label("hs_secret_file"), f"file {spec.hs_secret_file}")
    if spec.hs_secret_env is not None:
        raw = _environment(spec.hs_secret_env, label("hs_secret_env"))
        return _shared_secret(raw, spec.hs_kid, label("hs_secret_env"), f"environment {spec.hs_secret_env}")
    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    return None, {"source": "oidc_discovery", "from": discovery}


def jwks_source(spec: str, option: str) -> tuple[KeySource, dict[str, Any]]:
    """A JWKS URL, or a JWKS / PEM file read now; with its description."""
    if spec.startswith(("https://", "http://")):
        return JWKSUrl(spec), {"source": "jwks_url", "from": spec}
    text = read_text(spec, option)
    if text.lstrip().startswith("-----BEGIN"):
        document: Any = {"keys": [import_pem_key(text, spec).as_dict(private=False)]}
    else:
        try:
            document = json.loads(text)
        except ValueError:
            raise UsageError(f"{option} {spec}: not a JWKS (JSON) nor a PEM public key") from None
        if not isinstance(document, dict):
            raise UsageError(f"{option} {spec}: not a JWKS (JSON object) nor a PEM public key")
    listed = document.get("keys") if isinstance(document.get("keys"), list) else [document]
    kids = [entry.get("kid") for entry in listed if isinstance(entry, dict)]
    return StaticKeys(document), {"source": "jwks_file", "from": spec, "kids": kids}


def import_pem_key(text: str, path: str) -> Key:
    try:
        return import_pem(text)
    except ValueError:
        raise UsageError(f"{path}: the PEM could not be read as an EC, RSA or Ed25519 key") from None


def _shared_secret(raw: bytes, kid: str | None, option: str, origin: str) -> tuple[KeySource, dict[str, Any]]:
    """The secret: an oct JWK's ``k`` (and its kid), else the bytes exactly as given."""
    secret, jwk_kid = _oct_jwk(raw, option)
    kid = kid if kid is not None else jwk_kid
    return SharedSecret(secret, kid=kid), {"source": "hs_secret", "from": origin, "kid": kid}


def _oct_jwk(raw: bytes, option: str) -> tuple[bytes, str | None]:
    """An oct JWK (RFC 7518 §6.4) decoded to its key bytes and kid; anything else is the secret itself.

    Why no ambiguity: a secret that is a JSON object naming ``kty`` is refused by SharedSecret
    (it could be a public key), so no usable raw secret is read as a JWK.
    """
    if not raw.lstrip().startswith(b"{"):
        return raw, None
    try:
        data = json.loads(raw)
    except ValueError:
        return raw, None
    if not isinstance(data, dict) or data.get("kty") != "oct":
        return raw, None
    k, kid = data.get("k"), data.get("kid")
    if not isinstance(k, str) or _B64URL.fullmatch(k) is None:
        raise UsageError(f"{option}: the oct JWK's 'k' is not base64url")
    try:
        secret = base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
    except (binascii.Error, ValueError):
        raise UsageError(f"{option}: the oct JWK's 'k' is not base64url") from None
    return secret, kid if isinstance(kid, str) else None


def _environment(name: str, option: str) -> bytes:
    if os.supports_bytes_environ:
        value = os.environb.get(os.fsencode(name))
    else:  # Windows: the text environment, encoded as the process would see it
        value = _encoded(os.environ.get(name))
    if value is None:
        raise UsageError(f"{option} {name}: not set in the environment")
    if not value:
        raise UsageError(f"{option} {name}: empty")
    return value


def _encoded(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", "surrogateescape")


def tls_context(ca_file: str, option: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"{option} {ca_file}: cannot load CA certificates ({type(exc).__name__})") from None


def read_bytes(path: str, option: str) -> bytes:
    """A file's bytes, at most :data:`MAX_FILE_BYTES`."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise UsageError(f"{option} {path}: larger than {MAX_FILE_BYTES} bytes")
    return raw


def read_text(path: str, option: str) -> str:
    try:
        return read_bytes(path, option).decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not UTF-8 text") from None
