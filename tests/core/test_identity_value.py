"""Identity as a value: deeply read-only, serialisable, and named with its issuer when asked.

One Identity serves every request with its token (the verified-token cache hands it out again),
so nothing reachable from it may change; and ``iss#sub`` must name one (iss, sub) pair only.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import re
from collections.abc import Callable
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwt_middleware.identity import Identity, ReadOnlyDict, identity_from_claims, plain, read_only

ISSUER = "https://issuer.test"
CLAIMS: dict[str, Any] = {
    "iss": ISSUER,
    "sub": "alice",
    "scope": "read write",
    "amr": ["pwd"],
    "roles": ["viewer", {"team": ["a"]}],
    "org": {"name": "acme", "teams": ["a", "b"], "meta": {"tier": 1}},
    "exp": 1_800_000_300,
}


def built() -> Identity:
    return identity_from_claims(copy.deepcopy(CLAIMS), ISSUER)


#: every way a handler could try to change a claim in place, at the top and one level down
MUTATIONS: dict[str, Callable[[Any], object]] = {
    "set": lambda i: i.claims.__setitem__("sub", "admin"),
    "del": lambda i: i.claims.__delitem__("sub"),
    "update": lambda i: i.claims.update(sub="admin"),
    "ior": lambda i: i.claims.__ior__({"sub": "admin"}),
    "setdefault": lambda i: i.claims.setdefault("admin", True),
    "pop": lambda i: i.claims.pop("sub"),
    "popitem": lambda i: i.claims.popitem(),
    "clear": lambda i: i.claims.clear(),
    "nested-set": lambda i: i.claims["org"].__setitem__("name", "evil"),
    "nested-update": lambda i: i.claims["org"]["meta"].update(tier=9),
    "list-append": lambda i: i.claims["roles"].append("admin"),
    "list-item": lambda i: i.claims["org"]["teams"].__setitem__(0, "z"),
    "dict-in-list": lambda i: i.claims["roles"][1].__setitem__("team", ["all"]),
    "scopes-add": lambda i: i.scopes.add("admin"),
    "amr-append": lambda i: i.amr.append("mfa"),
    "field": lambda i: setattr(i, "subject", "admin"),
    "extra-attribute": lambda i: setattr(i.claims, "x", 1),
}


@pytest.mark.parametrize("name", list(MUTATIONS), ids=list(MUTATIONS))
def test_no_member_of_a_built_identity_changes_in_place(name: str) -> None:
    identity = built()
    with pytest.raises((TypeError, AttributeError)):
        MUTATIONS[name](identity)
    assert plain(identity.claims) == CLAIMS and identity.scopes == {"read", "write"}
    assert identity.subject == "alice" and identity.amr == ("pwd",)


@pytest.mark.parametrize("name", list(MUTATIONS), ids=list(MUTATIONS))
def test_no_member_of_a_constructed_identity_changes_in_place(name: str) -> None:
    """``Identity(...)`` with plain dicts, lists and sets gets the same read-only members."""
    members: Any = ({"read", "write"}, copy.deepcopy(CLAIMS), ["pwd"])
    identity = Identity("alice", ISSUER, members[0], members[1], expires_at=1_800_000_300, amr=members[2])
    with pytest.raises((TypeError, AttributeError)):
        MUTATIONS[name](identity)
    assert identity == built() and plain(identity.claims) == CLAIMS


def test_reads_stay_dict_reads() -> None:
    claims = built().claims
    assert claims["sub"] == "alice" and claims.get("missing") is None and "org" in claims
    assert list(claims) == list(CLAIMS) and claims == read_only(CLAIMS) and isinstance(claims, dict)
    assert claims["roles"] == ("viewer", {"team": ("a",)}) and claims["org"]["meta"]["tier"] == 1
    mine = dict(claims)  # a shallow, per-request copy may change; the shared claims do not
    mine["sub"] = "other"
    assert claims["sub"] == "alice"


def test_read_only_dict_built_directly_is_read_only_throughout() -> None:
    frozen = ReadOnlyDict({"a": [1, {"b": []}]}, c={"d": [2]})
    assert frozen == {"a": (1, {"b": ()}), "c": {"d": (2,)}}
    assert isinstance(frozen["a"][1], ReadOnlyDict) and isinstance(frozen["c"], ReadOnlyDict)
    ReadOnlyDict.__init__(frozen, {"a": "again"})  # dict.__init__ would merge; this one does not
    assert frozen["a"] == (1, {"b": ()})
    read_only_view = read_only(MappingProxyType({"m": [1]}))
    assert isinstance(read_only_view, ReadOnlyDict) and read_only_view == {"m": (1,)}


def test_to_dict_is_a_deep_plain_json_copy() -> None:
    identity = built()
    data = identity.to_dict()
    assert data["claims"] == CLAIMS and data["scopes"] == ["read", "write"] and data["amr"] == ["pwd"]
    assert data["subject"] == "alice" and data["issuer"] == ISSUER and data["expires_at"] == 1_800_000_300
    assert data["qualified_subject"] == "https://issuer.test#alice"
    assert set(data) == {f.name for f in dataclasses.fields(Identity)} | {"qualified_subject"}
    assert json.loads(json.dumps(data)) == data  # plain types only: nothing json cannot take
    _assert_plain(data)
    data["claims"]["roles"].append("admin")  # the copy is the caller's own
    data["claims"]["org"]["name"] = "evil"
    assert identity.claims["roles"] == ("viewer", {"team": ("a",)}) and identity.claims["org"]["name"] == "acme"


def _assert_plain(value: object) -> None:
    if isinstance(value, dict):
        assert type(value) is dict
        for item in value.values():
            _assert_plain(item)
    elif isinstance(value, list | tuple):
        assert type(value) is list
        for item in value:
            _assert_plain(item)
    else:
        assert value is None or type(value) in (str, int, float, bool)


def test_claims_go_to_json_as_they_are() -> None:
    assert json.loads(json.dumps(built().claims)) == CLAIMS


def test_pydantic_serialises_the_identity_dataclass() -> None:
    from pydantic import TypeAdapter

    document = json.loads(TypeAdapter(Identity).dump_json(built()))
    assert document["claims"] == CLAIMS and sorted(document["scopes"]) == ["read", "write"]
    assert document["subject"] == "alice"


@pytest.mark.parametrize("duplicate", [pickle.loads, copy.copy, copy.deepcopy], ids=["pickle", "copy", "deepcopy"])
def test_copies_and_pickles_are_equal_and_still_read_only(duplicate: Callable[[Any], Any]) -> None:
    identity = built()
    again = duplicate(pickle.dumps(identity)) if duplicate is pickle.loads else duplicate(identity)
    assert again == identity and type(again) is Identity
    assert isinstance(again.claims, ReadOnlyDict) and isinstance(again.claims["org"], ReadOnlyDict)
    with pytest.raises(TypeError):
        again.claims["org"]["name"] = "evil"
    assert again.qualified_subject == identity.qualified_subject


def test_replace_keeps_the_claims_read_only() -> None:
    replaced = dataclasses.replace(built(), subject="bob")
    assert replaced.subject == "bob" and isinstance(replaced.claims, ReadOnlyDict)
    with pytest.raises(TypeError):
        replaced.claims["sub"] = "admin"


# --- issuer-qualified subject -------------------------------------------------------------


def _split(qualified: str) -> tuple[str, str]:
    """The decoder the format promises: issuer up to the first '#', percent-decoded; then sub."""
    issuer, hash_, subject = qualified.partition("#")
    assert hash_ == "#" and re.fullmatch(r"(?:[^%#]|%2[35])*", issuer)
    return unquote(issuer), subject


def qualified(iss: str, sub: str) -> str:
    value = Identity(sub, iss, frozenset(), {}).qualified_subject
    assert value is not None
    return value


@given(st.text(), st.text())
def test_qualified_subject_gives_back_its_issuer_and_subject(iss: str, sub: str) -> None:
    """Decodable back to the one pair, so two different pairs never share an id."""
    assert _split(qualified(iss, sub)) == (iss, sub)


#: pairs whose naive ``iss + "#" + sub`` (or an escape of '#' alone) would collide
NEAR_COLLISIONS = [
    ("https://a", "b#c"), ("https://a#b", "c"), ("https://a#b#c", ""),
    ("https://a%23b", "c"), ("https://a%2523b", "c"), ("https://a%", "23b#c"), ("https://a%25", "x"),
    ("https://a%", "25x"), ("", "https://a#b#c"), ("https://a", "#b#c"),
]


def test_near_collisions_get_distinct_ids() -> None:
    ids = [qualified(iss, sub) for iss, sub in NEAR_COLLISIONS]
    assert len(set(ids)) == len(ids)
    assert [_split(found) for found in ids] == NEAR_COLLISIONS


def test_qualified_subject_reads_as_issuer_and_subject_for_an_oidc_issuer() -> None:
    identity = built()
    assert identity.qualified_subject == "https://issuer.test#alice"
    assert identity.user_id(qualified=True) == "https://issuer.test#alice"
    assert identity.user_id(qualified=False) == "alice"


def test_a_token_without_sub_has_no_qualified_subject() -> None:
    identity = identity_from_claims({"iss": ISSUER, "client_id": "svc"}, ISSUER)
    assert identity.qualified_subject is None
    assert identity.user_id(qualified=True) == identity.user_id(qualified=False) == ""
