"""pin_keys: which published keys may verify, and with which single algorithm (RFC 8725 §3.1)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from jwt_middleware.keys.cache import pin_keys
from jwt_middleware.testing import make_key


def jwk(algorithm: str = "ES256", kid: str = "k", **members: Any) -> dict[str, Any]:
    """A public JWK from :func:`make_key`; ``members`` override (None removes one)."""
    data = dict(make_key(algorithm, kid=kid).as_dict(private=False))  # type: ignore[arg-type]
    data.update(members)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture(scope="module")
def rsa_2048() -> dict[str, Any]:
    data = dict(RSAKey.generate_key(2048, {"kid": "rsa"}).as_dict(private=False))
    return data


def test_plain_signature_key_is_pinned_to_its_declared_alg() -> None:
    [key] = pin_keys({"keys": [jwk("ES256", kid="a")]}, ("ES256",))
    assert (key.kid, key.alg) == ("a", "ES256")


def test_encryption_key_is_ignored() -> None:
    assert pin_keys({"keys": [jwk(use="enc")]}, ("ES256",)) == []


@pytest.mark.parametrize(
    "ops", [["encrypt"], ["sign"], [], "verify"], ids=["encrypt", "sign", "empty", "not-list"]
)
def test_key_whose_key_ops_do_not_allow_verify_is_ignored(ops: Any) -> None:
    assert pin_keys({"keys": [jwk(key_ops=ops)]}, ("ES256",)) == []


def test_key_ops_with_verify_is_accepted() -> None:
    assert len(pin_keys({"keys": [jwk(key_ops=["verify"])]}, ("ES256",))) == 1


def test_rsa_key_below_2048_bits_is_ignored() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key it is asked to import
        small_key = RSAKey.generate_key(1024, {"kid": "small", "alg": "RS256"}, auto_kid=False)
        small = dict(small_key.as_dict(private=False))
        assert pin_keys({"keys": [small]}, ("RS256",)) == []


def test_key_with_alg_outside_the_allowlist_is_ignored() -> None:
    assert pin_keys({"keys": [jwk("ES384")]}, ("ES256",)) == []


def test_key_declaring_an_alg_its_curve_cannot_do_is_ignored() -> None:
    p384 = dict(ECKey.generate_key("P-384", {"kid": "x", "alg": "ES256"}).as_dict(private=False))
    assert pin_keys({"keys": [p384]}, ("ES256",)) == []


def test_rsa_key_without_alg_is_pinned_to_the_allowlists_rsa_alg(rsa_2048: dict[str, Any]) -> None:
    [key] = pin_keys({"keys": [rsa_2048]}, ("ES256", "PS256"))
    assert key.alg == "PS256"


def test_ec_key_without_alg_is_pinned_by_its_curve() -> None:
    [key] = pin_keys({"keys": [jwk("ES384", alg=None)]}, ("ES256", "ES384"))
    assert key.alg == "ES384"


def test_symmetric_key_in_a_public_set_is_never_pinned_to_an_asymmetric_alg() -> None:
    oct_key = dict(OctKey.generate_key(256, {"kid": "hs"}).as_dict(private=True))
    assert pin_keys({"keys": [oct_key]}, ("ES256", "RS256")) == []
    oct_key["alg"] = "HS256"
    assert pin_keys({"keys": [oct_key]}, ("ES256", "RS256")) == []


@pytest.mark.parametrize(
    "garbage",
    [None, 1, "key", [], {}, {"kty": "EC"}, {"kty": "EC", "crv": "P-256", "x": "!!", "y": "??"},
     {"kty": "RSA", "n": "AQAB"}, {"kty": "nope"}, {"kty": "OKP", "crv": "X25519", "x": "AAAA"}],
    ids=repr,
)
def test_garbage_entries_are_skipped_not_fatal(garbage: Any) -> None:
    good = jwk(kid="good")
    pinned = pin_keys({"keys": [garbage, good, garbage]}, ("ES256",))
    assert [k.kid for k in pinned] == ["good"]


@pytest.mark.parametrize("kid", [5, ["a"], {"a": 1}, True], ids=repr)
def test_key_with_a_non_string_kid_is_skipped(kid: Any) -> None:
    data = jwk()
    data["kid"] = kid
    assert pin_keys({"keys": [data]}, ("ES256",)) == []


@pytest.mark.parametrize("document", [{}, {"keys": None}, {"keys": {"kty": "EC"}}, {"keys": "[]"}], ids=repr)
def test_document_without_a_keys_list_pins_nothing(document: dict[str, Any]) -> None:
    assert pin_keys(document, ("ES256",)) == []


def test_only_the_first_max_keys_entries_are_read() -> None:
    many = [jwk(kid=f"k{i}") for i in range(5)]
    assert [k.kid for k in pin_keys({"keys": many}, ("ES256",), max_keys=3)] == ["k0", "k1", "k2"]
