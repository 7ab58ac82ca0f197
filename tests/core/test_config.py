"""Configuration mistakes fail at start-up with a ConfigError naming the option (STYLE §6.4)."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import Key

from jwt_middleware import (
    Authenticator,
    Config,
    ConfigError,
    CookieSource,
    Issuer,
    JWKSUrl,
    OIDCDiscovery,
    Rule,
    SharedSecret,
    StaticKeys,
)
from jwt_middleware.testing import make_key, public_jwks

from ._support import ISSUER


def raises(option: str) -> Any:
    """A ConfigError whose message starts with the option's name."""
    return pytest.raises(ConfigError, match="^" + re.escape(option))


@pytest.fixture(scope="module")
def static(es256_key: Key) -> StaticKeys:
    return StaticKeys(public_jwks(es256_key))


def es_issuer(keys: StaticKeys, **kwargs: Any) -> Issuer:
    return Issuer(ISSUER, algorithms=("ES256",), keys=keys, **kwargs)


# --- HMAC secrets ----------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [b"", b"secret", "password123", b"x" * 31])
def test_rejects_weak_hmac_secret(secret: bytes | str) -> None:
    with raises("SharedSecret"):
        SharedSecret(secret)


def test_accepts_a_256_bit_secret() -> None:
    assert "xxxx" not in repr(SharedSecret(b"x" * 32))  # and never prints it


def _public_key_encodings() -> dict[str, bytes]:
    rsa_public = rsa.generate_private_key(65537, 2048).public_key()
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return {
        "rsa-pem": rsa_public.public_bytes(serialization.Encoding.PEM, spki),
        "rsa-pkcs1-pem": rsa_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "rsa-der": rsa_public.public_bytes(serialization.Encoding.DER, spki),
        "ec-pem": ec_public.public_bytes(serialization.Encoding.PEM, spki),
        "ec-point": ec_public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint),
        "openssh": rsa_public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        "jwk-json": json.dumps(make_key("ES256").as_dict(private=False)).encode(),
        "pem-with-whitespace": b"\n  " + ec_public.public_bytes(serialization.Encoding.PEM, spki),
    }


PUBLIC_KEYS = _public_key_encodings()


@pytest.mark.parametrize("encoding", list(PUBLIC_KEYS))
def test_rejects_public_key_given_as_hmac_secret(encoding: str) -> None:
    """CVE-2022-29217 / python-jose #414: anyone holding the public key could forge HS tokens."""
    with raises("SharedSecret") as caught:
        SharedSecret(PUBLIC_KEYS[encoding])
    assert "public key" in str(caught.value)


# --- algorithms ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithms", [("none",), ("NONE",), ("None",), ("ES256", "none")])
def test_rejects_none_in_algorithms(static: StaticKeys, algorithms: tuple[str, ...]) -> None:
    with raises("Issuer.algorithms") as caught:
        Issuer(ISSUER, algorithms=algorithms, keys=static)
    assert "'none' is never accepted" in str(caught.value)


@pytest.mark.parametrize("algorithms", [(), ("HS1",), ("RSA-OAEP",), ("es256",)])
def test_rejects_empty_or_unknown_algorithms(static: StaticKeys, algorithms: tuple[str, ...]) -> None:
    with raises("Issuer.algorithms"):
        Issuer(ISSUER, algorithms=algorithms, keys=static)


@pytest.mark.parametrize("algorithms", [("HS256", "RS256"), ("ES256", "HS512")])
def test_rejects_hs_mixed_with_asymmetric(static: StaticKeys, algorithms: tuple[str, ...]) -> None:
    with raises("Issuer.algorithms") as caught:
        Issuer(ISSUER, algorithms=algorithms, keys=static)
    assert "key confusion" in str(caught.value)


def test_rejects_hs_algorithm_without_shared_secret(static: StaticKeys) -> None:
    with raises("Issuer.keys"):
        Issuer(ISSUER, algorithms=("HS256",), keys=static)
    with raises("Issuer.keys"):
        Issuer(ISSUER, algorithms=("HS256",))


def test_rejects_shared_secret_with_asymmetric_algorithm() -> None:
    with raises("Issuer.keys"):
        Issuer(ISSUER, algorithms=("RS256",), keys=SharedSecret(b"k" * 32))


# --- key sources -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://idp.example/jwks", "http://10.0.0.1/jwks", "ftp://idp.example/jwks",
                                 "https:///jwks", "file:///etc/jwks.json", "jwks.json"])
def test_rejects_insecure_jwks_url(url: str) -> None:
    with raises("JWKSUrl.url"):
        JWKSUrl(url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]/jwks",
                                 "https://idp.example/jwks"])
def test_accepts_https_or_loopback_http_jwks_url(url: str) -> None:
    assert JWKSUrl(url).url == url


def test_rejects_plain_http_discovery_off_loopback() -> None:
    with raises("OIDCDiscovery.url"):
        OIDCDiscovery("http://idp.example/.well-known/openid-configuration")
    with raises("Issuer.issuer"):
        Issuer("http://idp.example", algorithms=("ES256",))  # discovery from the issuer URL


@pytest.mark.filterwarnings("ignore:Key size should be:UserWarning")
def test_rejects_static_keys_that_cannot_verify_the_algorithms() -> None:
    weak_rsa = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for keys, algorithms in ((StaticKeys(public_jwks(make_key("ES256"))), ("RS256",)),
                             (StaticKeys(weak_rsa), ("RS256",))):
        with raises(f"Issuer {ISSUER!r}"):
            Authenticator(Config(issuers=[Issuer(ISSUER, algorithms, keys=keys)], audience="api"))


def test_rejects_unreadable_static_keys() -> None:
    with raises("StaticKeys"):
        Authenticator(Config(issuers=[Issuer(ISSUER, ("ES256",), keys=StaticKeys("not a key"))], audience="api"))


# --- audience and the rest ------------------------------------------------------------------------------
def test_rejects_missing_audience(static: StaticKeys) -> None:
    """RFC 9068 §4: an access token's aud must be checked, so an audience must be configured."""
    with raises("Config.audience") as caught:
        Config(issuers=[es_issuer(static)])
    assert ISSUER in str(caught.value)
    with raises("Config.audience"):
        Config(issuers=[es_issuer(static)], audience=())


@pytest.mark.parametrize("audience", ["", ("api", ""), [""]])
def test_rejects_empty_audience(static: StaticKeys, audience: Any) -> None:
    with raises("Config.audience"):
        Config(issuers=[es_issuer(static)], audience=audience)
    with raises("Issuer.audiences"):
        es_issuer(static, audiences=audience if not isinstance(audience, str) else (audience,))


def test_issuer_audiences_replace_the_config_audience(static: StaticKeys) -> None:
    config = Config(issuers=[es_issuer(static, audiences=("orders",))])
    assert config.audiences_for(config.issuers[0]) == ("orders",)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"issuers": []}, "Config.issuers"),
     ({"leeway": -1}, "Config.leeway"),
     ({"leeway": 301}, "Config.leeway"),
     ({"max_token_bytes": 100}, "Config.max_token_bytes"),
     ({"sources": ()}, "Config.sources"),
     ({"max_age": 0}, "Config.max_age"),
     ({"max_lifetime": -5}, "Config.max_lifetime"),
     ({"verified_cache_size": -1}, "Config.verified_cache_size")],
)
def test_config_errors_name_the_option(static: StaticKeys, kwargs: dict[str, Any], option: str) -> None:
    kwargs.setdefault("issuers", [es_issuer(static)])
    with raises(option):
        Config(audience="api", **kwargs)


def test_rejects_the_same_issuer_twice(static: StaticKeys) -> None:
    with raises("Config.issuers"):
        Config(issuers=[es_issuer(static), es_issuer(static)], audience="api")


@pytest.mark.parametrize("name", ["", "a b", "a=b", "a;b", 'a"b', "a\r\nb"])
def test_rejects_invalid_cookie_name(name: str) -> None:
    with raises("CookieSource.name"):
        CookieSource(name)


def test_config_is_frozen_and_lists_become_tuples(static: StaticKeys) -> None:
    config = Config(issuers=[es_issuer(static)], audience=["api", "api2"])
    assert config.audience == ("api", "api2") and isinstance(config.issuers, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.leeway = 0  # type: ignore[misc]
    issuer = Issuer(ISSUER, algorithms=["ES256"], keys=static)  # type: ignore[arg-type]
    assert issuer.algorithms == ("ES256",)


def test_static_keys_accept_pem_and_json(es256_key: Key) -> None:
    pem = es256_key.public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for keys in (StaticKeys(pem), StaticKeys(json.dumps(public_jwks(es256_key))),
                 StaticKeys(es256_key.as_dict(private=False))):
        Authenticator(Config(issuers=[Issuer(ISSUER, ("ES256",), keys=keys)], audience="api"))


@pytest.mark.parametrize("scopes", ["read write", ("read write",), ("",), ('a"b',), ("a\\b",), ("é",)])
def test_rejects_rule_scopes_that_are_not_single_scope_tokens(scopes: Any) -> None:
    """"read write" would be one scope no token can hold: a rule that silently refuses everyone."""
    with raises("Rule.scopes"):
        Rule("/x", scopes=scopes)


def test_rule_scopes_accept_scope_tokens() -> None:
    assert Rule("/x", scopes=("read", "write:all", "https://api.example/admin")).scopes[1] == "write:all"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("option", ["leeway", "max_age", "max_lifetime"])
def test_non_finite_durations_are_refused_because_nan_would_turn_checks_off(option: str, value: float) -> None:
    from jwt_middleware import Config, ConfigError, Issuer, StaticKeys
    from jwt_middleware.testing import make_key, public_jwks

    issuer = Issuer("https://issuer.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(make_key())))
    with pytest.raises(ConfigError, match=option):
        Config(issuers=[issuer], audience="api", **{option: value})


def test_nan_in_key_policy_and_rule_is_refused() -> None:
    from jwt_middleware import ConfigError, KeyPolicy, Rule

    with pytest.raises(ConfigError, match="stale_if_error"):
        KeyPolicy(stale_if_error=float("nan"))
    with pytest.raises(ConfigError, match="iat_window"):
        Rule("/x", iat_window=float("nan"))


def test_missing_ca_bundle_is_refused_at_start_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from jwt_middleware import ConfigError, KeyPolicy

    with pytest.raises(ConfigError, match=r"KeyPolicy\.tls"):
        KeyPolicy(tls=str(tmp_path / "missing.pem"))


# --- paths, methods and rules (README "Paths, methods and rules") ---------------------------------------
def test_path_options_default_to_the_safe_choice(static: StaticKeys) -> None:
    config = Config(issuers=[es_issuer(static)], audience="api")
    assert (config.path_normalization, config.preflight, config.match_full_path) == ("refuse", "authenticate", False)


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"path_normalization": "normalize"}, "Config.path_normalization"),
     ({"path_normalization": None}, "Config.path_normalization"),
     ({"preflight": "bypass"}, "Config.preflight"),
     ({"preflight": True}, "Config.preflight"),
     ({"match_full_path": "yes"}, "Config.match_full_path")],
)
def test_rejects_unknown_path_options(static: StaticKeys, kwargs: dict[str, Any], option: str) -> None:
    with raises(option):
        Config(issuers=[es_issuer(static)], audience="api", **kwargs)
