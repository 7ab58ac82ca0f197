"""``verify --explain``: a refused token's own header and claims, unverified, beside the configuration.

Only the command line shows this: it is the operator's own token on the operator's terminal.
The middleware never does (its refusals carry a constant description, STYLE.md §4, §12).
Never shown: the signature, the other claims, a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from ._cli_config import Built
from .config import Config, Issuer

__all__ = ["explain"]

HEADER_MEMBERS: Final = ("alg", "kid", "typ")
CLAIMS: Final = ("iss", "aud", "exp", "nbf", "iat")
#: longest string shown, and most list items: a hostile token cannot flood the terminal
MAX_TEXT: Final = 200
MAX_ITEMS: Final = 10
_NOTE: Final = "decoded without verifying the signature: what the token claims, not facts"


def explain(token: bytes, built: Built) -> dict[str, Any]:
    """What the refused ``token`` says of itself (``unverified``) and what it was checked against."""
    header, claims = unverified_segments(token)
    unverified: dict[str, Any] = {"note": _NOTE}
    unverified["header"] = _pick(header, HEADER_MEMBERS)
    unverified["claims"] = _pick(claims, CLAIMS)
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return {"unverified": unverified, "configured": configured(built, iss if isinstance(iss, str) else None)}


def unverified_segments(token: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The header and payload JSON objects of a compact JWS (a JWE: its header only)."""
    parts = token.split(b".")
    if len(parts) not in (3, 5):
        return None, None
    payload = _json_segment(parts[1]) if len(parts) == 3 else None
    return _json_segment(parts[0]), payload


def _json_segment(segment: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _pick(members: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any] | str:
    if members is None:
        return "not decodable (not base64url JSON)"
    return {name: _shown(members[name]) for name in names if name in members}


def _shown(value: Any) -> Any:
    """A claim value cut to size: long strings and lists shortened, objects not opened."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, list):
        return [_shown(item) for item in value[:MAX_ITEMS]] + (["…"] if len(value) > MAX_ITEMS else [])
    if isinstance(value, dict):
        return "{…}"
    return value


def configured(built: Built, iss: str | None) -> dict[str, Any]:
    """The checks a token meets: the issuer its ``iss`` names (or every trusted issuer), the claim rules."""
    config = built.config
    shown: dict[str, Any] = {"now": config.clock()}
    issuer = next((i for i in config.issuers if i.issuer == iss), None)
    if issuer is None:
        shown["issuers"] = [i.issuer for i in config.issuers]
    else:
        shown["issuer"] = _issuer(config, issuer, built.keys[issuer.issuer])
    shown.update(_claim_rules(config))
    return shown


def _issuer(config: Config, issuer: Issuer, keys: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuer": issuer.issuer,
        "algorithms": list(issuer.algorithms),
        "audiences": list(config.audiences_for(issuer)),
        "typ": list(issuer.typ) if issuer.typ is not None else None,
        "required_claims": list(issuer.required_claims),
        "require_kid": issuer.require_kid,
        "allow_key_headers": issuer.allow_key_headers,
        "keys": keys,
    }


def _claim_rules(config: Config) -> dict[str, Any]:
    return {
        "leeway": config.leeway,
        "max_age": config.max_age,
        "max_lifetime": config.max_lifetime,
        "require_exp": config.require_exp,
        "require_iat": config.require_iat,
        "max_token_bytes": config.max_token_bytes,
    }
