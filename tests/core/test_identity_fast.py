"""identity_from_claims builds Identity through slot setters: the same value as Identity(...).

The fast builder sets each field by hand; a field added to Identity, or two setters swapped,
must fail here rather than ship an identity with a field unset or wrong.
"""

from __future__ import annotations

import copy
import dataclasses
from types import MappingProxyType
from typing import Any

import pytest

from jwt_middleware.identity import Identity, ReadOnlyDict, identity_from_claims, read_only

ISSUER = "https://issuer.test"


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def reference(claims: dict[str, Any], issuer: str) -> Identity:
    """The plain construction (keyword arguments, the dataclass's own __init__)."""
    scopes: set[str] = set()
    if isinstance(claims.get("scope"), str):
        scopes.update(claims["scope"].split())
    scp = claims.get("scp")
    if isinstance(scp, str):
        scopes.update(scp.split())
    elif isinstance(scp, list):
        scopes.update(s for s in scp if isinstance(s, str))
    amr, cnf, acr = claims.get("amr"), claims.get("cnf"), claims.get("acr")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    sid = claims.get("sid")
    client = claims.get("client_id") if isinstance(claims.get("client_id"), str) else claims.get("azp")
    return Identity(
        subject=claims.get("sub"),
        issuer=issuer,
        scopes=frozenset(scopes),
        claims=MappingProxyType(claims),
        token_id=claims.get("jti"),
        expires_at=_number(claims.get("exp")),
        issued_at=_number(claims.get("iat")),
        auth_time=_number(claims.get("auth_time")),
        acr=acr if isinstance(acr, str) else None,
        amr=tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else (),
        binding=jkt if isinstance(jkt, str) else None,
        session_id=sid if isinstance(sid, str) and sid else None,
        client_id=client if isinstance(client, str) and client else None,
    )


#: every optional claim present, each field a different value (a swapped setter shows)
ALL = {
    "iss": ISSUER,
    "sub": "user-1",
    "jti": "jti-1",
    "exp": 1_800_000_300,
    "iat": 1_800_000_000,
    "auth_time": 1_799_999_000.5,
    "acr": "urn:acr:2",
    "amr": ["pwd", 7, "otp"],
    "cnf": {"jkt": "thumb-1"},
    "scope": "read write",
    "scp": ["admin", 3, None, "read"],
    "sid": "session-1",
    "client_id": "client-1",
}

CLAIM_SETS: dict[str, dict[str, Any]] = {
    "all-present": ALL,
    "all-absent": {},
    "minimal": {"iss": ISSUER, "sub": "s", "exp": 1, "iat": 0},
    "scope-only": {"sub": "s", "scope": "a b  c\tb"},
    "scope-empty-string": {"scope": ""},
    "scp-string-only": {"scp": "x y"},
    "scp-list-only": {"scp": ["x", 1, "y", ["z"], "x"]},
    "scope-and-scp-string": {"scope": "a b", "scp": "b c"},
    "scp-null": {"scope": "a", "scp": None},
    "scp-ill-typed": {"scope": "a", "scp": 5},
    "scope-ill-typed": {"scope": ["a", "b"], "scp": {"a": 1}},
    "numbers-bool": {"exp": True, "iat": False, "auth_time": 1},
    "numbers-ill-typed": {"exp": "1800000000", "iat": None, "auth_time": [1]},
    "numbers-float": {"exp": 1.5, "iat": -0.0, "auth_time": 0},
    "amr-ill-typed": {"amr": "pwd", "acr": 2},
    "amr-empty": {"amr": []},
    "cnf-ill-typed": {"cnf": [], "sub": None},
    "cnf-jkt-ill-typed": {"cnf": {"jkt": 1}},
    "cnf-without-jkt": {"cnf": {"jwk": {}}},
    "azp-when-no-client_id": {"azp": "client-2", "sid": ""},
    "client_id-wins-over-azp": {"client_id": "client-1", "azp": "client-2", "sid": 5},
}


@pytest.mark.parametrize("name", list(CLAIM_SETS), ids=list(CLAIM_SETS))
def test_fast_builder_equals_plain_construction(name: str) -> None:
    claims = CLAIM_SETS[name]
    built, expected = identity_from_claims(claims, ISSUER), reference(claims, ISSUER)
    for field in dataclasses.fields(Identity):  # an unset slot raises AttributeError here
        assert getattr(built, field.name) == getattr(expected, field.name), field.name
    assert built == expected
    assert repr(built) == repr(expected)
    assert type(built) is Identity


def test_every_field_is_set_and_distinct() -> None:
    """All thirteen fields differ in ALL, so the comparison above catches two swapped setters."""
    built = identity_from_claims(ALL, ISSUER)
    values = [getattr(built, field.name) for field in dataclasses.fields(Identity)]
    assert len(values) == 13
    assert all(value is not None and value != () for value in values)
    assert len({repr(value) for value in values}) == len(values)
    assert built.scopes == frozenset({"read", "write", "admin"})
    assert built.amr == ("pwd", "otp") and built.binding == "thumb-1"


def test_fast_identity_is_an_ordinary_identity() -> None:
    built = identity_from_claims(ALL, ISSUER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.subject = "admin"  # type: ignore[misc]
    with pytest.raises(TypeError):
        built.claims["sub"] = "admin"  # type: ignore[index]
    replaced = dataclasses.replace(built, subject="other")
    assert replaced == dataclasses.replace(reference(ALL, ISSUER), subject="other")
    assert replaced.subject == "other" and built.subject == "user-1"
    assert copy.copy(built) == built
    assert built.has_scopes(("read", "admin")) and not built.has_scopes(frozenset({"delete"}))


def test_claims_are_a_read_only_copy_nested_members_included() -> None:
    claims: dict[str, Any] = {"sub": "s", "roles": ["a", {"b": [1]}], "org": {"teams": ["x"]}}
    built = identity_from_claims(claims, ISSUER)
    assert isinstance(built.claims, ReadOnlyDict) and built.claims == read_only(claims)
    assert built.claims["roles"] == ("a", {"b": (1,)}) and isinstance(built.claims["roles"][1], ReadOnlyDict)
    assert isinstance(built.claims["org"], ReadOnlyDict) and built.claims["org"]["teams"] == ("x",)
    assert built.claims is not claims and claims["roles"] == ["a", {"b": [1]}]  # the input is left as it is


def test_flat_claims_are_copied_as_they_are() -> None:
    claims = {"sub": "s", "exp": 1, "scope": "a b", "x": None, "f": 1.5, "t": True}
    built = identity_from_claims(claims, ISSUER)
    assert isinstance(built.claims, ReadOnlyDict) and built.claims == claims
    assert all(built.claims[key] is value for key, value in claims.items())
