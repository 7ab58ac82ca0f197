"""pin_keys: which published keys may verify, and with which single algorithm (RFC 8725 §3.1)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from jwt_middleware.keys.cache import pin_keys
from jwt_middleware.keys.pinning import read_keys
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


# --- read_keys: each key that can never verify is named, with its reason ---------------------------
def _weak_rsa(kid: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key it is asked to make
        return dict(RSAKey.generate_key(1024, {"kid": kid, "alg": "RS256"}, auto_kid=False).as_dict(private=False))


UNUSABLE: dict[str, tuple[Any, str]] = {
    "rsa-1024": (_weak_rsa("weak"), "1024 bits, under 2048"),
    "secp256k1": (dict(ECKey.generate_key("secp256k1", {"kid": "k1"}).as_dict(private=False)), "EC curve 'secp256k1'"),
    "x25519": (dict(OKPKey.generate_key("X25519", {"kid": "x"}).as_dict(private=False)), "not a signature curve"),
    "ed448": (dict(OKPKey.generate_key("Ed448", {"kid": "x"}).as_dict(private=False)), "not a signature curve"),
    "use-enc": (jwk(use="enc"), "use is 'enc'"),
    "key-ops-sign": (jwk(key_ops=["sign"]), "key_ops do not include 'verify'"),
    "alg-not-allowed": (jwk("ES384"), "alg 'ES384' is not in Issuer.algorithms"),
    "curve-not-allowed": (jwk("ES384", alg=None), "verifies ES384, which is not in Issuer.algorithms"),
    "alg-beyond-curve": (jwk("ES384", alg="ES256"), "cannot verify ES256"),
    "oct": (dict(OctKey.generate_key(256, {"kid": "hs"}).as_dict(private=True)), "with an oct key"),
    "unknown-kty": ({"kty": "nope", "kid": "n"}, "not a valid 'nope' JWK"),
    "bad-members": ({"kty": "EC", "crv": "P-256", "x": "!!", "y": "??", "kid": "b"}, "not a valid 'EC' JWK"),
}


@pytest.mark.filterwarnings("ignore:Key size should be")
@pytest.mark.parametrize(("entry", "reason"), UNUSABLE.values(), ids=UNUSABLE.keys())
def test_each_unusable_key_is_named_with_its_reason_and_the_others_kept(entry: Any, reason: str) -> None:
    pinned, [skipped] = read_keys({"keys": [jwk(kid="good"), entry]}, ("ES256", "RS256", "EdDSA"))
    assert [k.kid for k in pinned] == ["good"]
    assert skipped.key == f"kid {entry['kid']!r}"
    assert reason in skipped.reason
    for member in ("n", "x", "y", "k"):  # never key material
        if isinstance(entry.get(member), str) and len(entry[member]) > 8:
            assert entry[member] not in str(skipped)


def test_key_without_a_string_kid_is_named_by_its_index() -> None:
    kidless = {k: v for k, v in jwk(use="enc").items() if k != "kid"}
    numbered = jwk() | {"kid": 5}
    _, skipped = read_keys({"keys": [jwk(kid="good"), 7, kidless, numbered]}, ("ES256",))
    assert [str(s) for s in skipped] == [
        "key #1: it is not a JSON object", "key #2: its use is 'enc', not 'sig'", "key #3: its kid is not a string"
    ]


def test_second_key_with_the_same_kid_and_alg_is_named_and_the_first_kept() -> None:
    first, second = jwk(kid="dup"), jwk(kid="dup")
    pinned, [skipped] = read_keys({"keys": [first, second]}, ("ES256",))
    assert [k.key.as_dict(private=False)["x"] for k in pinned] == [first["x"]]
    assert str(skipped) == "kid 'dup': an earlier key has the same kid and alg ES256"


def test_keys_past_max_keys_are_reported() -> None:
    _, [skipped] = read_keys({"keys": [jwk(kid=f"k{i}") for i in range(5)]}, ("ES256",), max_keys=3)
    assert str(skipped) == "key #3 on: 2 keys past KeyPolicy.max_keys=3"


def test_a_long_kid_is_shown_shortened() -> None:
    _, [skipped] = read_keys({"keys": [jwk(kid="k" * 500, use="enc")]}, ("ES256",))
    assert len(skipped.key) < 80 and skipped.key.endswith("...")


@pytest.mark.parametrize("token_alg", ["EdDSA", "Ed25519"])
def test_ed25519_key_without_alg_verifies_under_both_of_its_names(token_alg: str) -> None:
    """RFC 9864 §2: ``EdDSA`` on an Ed25519 key and ``Ed25519`` are one verification; a key
    that does not declare its alg must serve both when the issuer allows both."""
    pinned = pin_keys({"keys": [jwk("Ed25519", kid="ed", alg=None)]}, ("EdDSA", "Ed25519"))
    assert {(k.kid, k.alg) for k in pinned} == {("ed", "EdDSA"), ("ed", "Ed25519")}
    assert token_alg in {k.alg for k in pinned}


def test_ed25519_key_that_declares_its_alg_keeps_exactly_that_one() -> None:
    pinned = pin_keys({"keys": [jwk("Ed25519", kid="ed", alg="Ed25519")]}, ("EdDSA", "Ed25519"))
    assert [(k.kid, k.alg) for k in pinned] == [("ed", "Ed25519")]
