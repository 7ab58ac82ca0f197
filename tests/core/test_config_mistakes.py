"""Each mistake users make with the options is a ConfigError at construction naming the option
and the fix, never a silent misconfiguration found per request (every token ``unknown_kid``,
every request 503) nor a raw TypeError/AttributeError (issue 11 item 5, STYLE §6.4).

This module is also checked by ``mypy --strict``: the well-formed configurations below use
plain lists, as the README does, and must type-check without ignores.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import Key

from jwt_middleware import (
    Authenticator,
    Config,
    ConfigError,
    CookieSource,
    DPoPSettings,
    HeaderSource,
    Issuer,
    JWKSFile,
    JWKSUrl,
    KeyPolicy,
    OIDCDiscovery,
    Rule,
    SharedSecret,
    StaticKeys,
)
from jwt_middleware.testing import public_jwks

from ._support import ISSUER

NOT_TEXT: Any = 123


def refused(option: str, *fix: str) -> Any:
    """A ConfigError whose message starts with the option and contains each piece of the fix."""
    pattern = "^" + re.escape(option) + "".join(f"(?=.*{re.escape(part)})" for part in fix)
    return pytest.raises(ConfigError, match=re.compile(pattern, re.DOTALL))


def issuer(**kwargs: Any) -> Issuer:
    kwargs.setdefault("algorithms", ["ES256"])
    return Issuer(ISSUER, **kwargs)


# --- the cases of issue 11 item 5 ------------------------------------------------------------------
def test_a_jwks_url_given_as_a_plain_string_names_jwksurl() -> None:
    """Before: accepted, then every token was refused ``unknown_kid``."""
    mistake: Any = "https://idp.example/jwks"
    with refused("Issuer.keys", "JWKSUrl('https://idp.example/jwks')", "OIDCDiscovery("):
        issuer(keys=mistake)


@pytest.mark.parametrize(
    ("mistake", "fix"),
    [("/etc/jwks.json", "JWKSFile('/etc/jwks.json')"),
     ('{"keys": []}', "StaticKeys("),
     ({"keys": []}, "StaticKeys("),
     (b"-----BEGIN PUBLIC KEY-----", "StaticKeys("),
     (42, "JWKSUrl(")],
)
def test_any_other_bare_value_as_keys_names_the_source_it_was_meant_to_be(mistake: Any, fix: str) -> None:
    with refused("Issuer.keys", fix):
        issuer(keys=mistake)


def test_a_missing_jwks_file_is_refused_when_the_authenticator_is_built(tmp_path: Path) -> None:
    """Before the Authenticator check: every request 503. The path is named, and what it must hold."""
    missing = tmp_path / "nowhere.json"
    config = Config(issuers=[issuer(keys=JWKSFile(str(missing)))], audience="api")
    with pytest.raises(ConfigError, match=re.escape(str(missing)) + ".*JWKS document"):
        Authenticator(config)


def test_a_jwks_file_accepts_a_path_object_and_stores_its_text(tmp_path: Path, es256_key: Key) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(es256_key)))
    source = JWKSFile(path)  # type: ignore[arg-type]  # typed str; a Path is tolerated at run time
    assert source.path == str(path)
    Authenticator(Config(issuers=[issuer(keys=source)], audience="api"))


@pytest.mark.parametrize("mistake", [123, 1.5, object()])
def test_an_audience_that_is_not_text_names_the_option(mistake: Any) -> None:
    """Before: a raw ``TypeError: 'int' object is not iterable``."""
    with refused("Config.audience", "audience='api'"):
        Config(issuers=[issuer()], audience=mistake)


def test_a_lone_issuer_not_in_a_list_says_to_put_it_in_one() -> None:
    """Before: ``TypeError: 'Issuer' object is not iterable``."""
    mistake: Any = issuer()
    with refused("Config.issuers", "lone Issuer", "put it in a list", "issuers=[Issuer("):
        Config(issuers=mistake, audience="api")


@pytest.mark.parametrize("mistake", [["https://idp"], "https://idp", [{"issuer": "https://idp"}]])
def test_issuers_given_as_urls_or_dicts_say_to_build_issuer_objects(mistake: Any) -> None:
    """Before: ``AttributeError: 'str' object has no attribute 'issuer'``."""
    with refused("Config.issuers", "Issuer('https://idp.example', algorithms=['ES256'])"):
        Config(issuers=mistake, audience="api")


def test_a_dict_in_place_of_config_names_config() -> None:
    """Before: ``AttributeError: 'dict' object has no attribute 'issuers'``."""
    mistake: Any = {"issuers": [issuer()], "audience": "api"}
    with refused("config", "Config(...)", "Config(**options)"):
        Authenticator(mistake)


@pytest.mark.parametrize("mistake", ["x" * 40, "x", bytearray(32)])
def test_a_nonce_secret_given_as_text_asks_for_bytes(mistake: Any) -> None:
    """Before: text passed DPoPSettings, then the Authenticator raised an error naming the
    internal DPoPNonces and a wrong length (a 40-character text is long enough)."""
    with refused("DPoPSettings.nonce_secret", "give bytes", "secrets.token_bytes(32)"):
        DPoPSettings(nonce_secret=mistake, allowed_hosts=["api.example.com"])


# --- the same shape of mistake elsewhere -----------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "option", "fix"),
    [(lambda v: Config(issuers=[issuer()], audience="api", rules=v), "Config.rules", "rules=[Rule("),
     (lambda v: Config(issuers=[issuer()], audience="api", sources=v), "Config.sources",
      "sources=[HeaderSource(), CookieSource()]"),
     (lambda v: issuer(algorithms=v), "Issuer.algorithms", "algorithms=['ES256']"),
     (lambda v: issuer(audiences=v), "Issuer.audiences", "audiences=['api']"),
     (lambda v: issuer(typ=v), "Issuer.typ", "typ=['at+jwt']"),
     (lambda v: issuer(required_claims=v), "Issuer.required_claims", "required_claims=["),
     (lambda v: Rule("/x", methods=v), "Rule.methods", "methods=('GET', 'POST')"),
     (lambda v: Rule("/x", scopes=v), "Rule.scopes", "scopes=('read', 'write')"),
     (lambda v: DPoPSettings(algorithms=v, allowed_hosts=["a.example"]), "DPoPSettings.algorithms",
      "algorithms=['ES256']"),
     (lambda v: DPoPSettings(allowed_hosts=v), "DPoPSettings.allowed_hosts",
      "allowed_hosts=['api.example.com']")],
)
@pytest.mark.parametrize("mistake", [5, [5], {"a": 1}, b"GET"])
def test_every_list_option_refuses_a_lone_value_or_a_wrong_item(
    build: Callable[[Any], object], option: str, fix: str, mistake: Any
) -> None:
    with refused(option, fix):
        build(mistake)


@pytest.mark.parametrize(
    ("kwargs", "option", "fix"),
    [({"keys": {"fetch_timeout": 1}}, "Config.keys", "KeyPolicy(...)"),
     ({"dpop": {"allowed_hosts": ["a"]}}, "Config.dpop", "DPoPSettings(...)"),
     ({"rules": [Rule("/x")], "sources": [HeaderSource, CookieSource]}, "Config.sources", "HeaderSource()")],
)
def test_settings_objects_given_as_dicts_or_classes_name_the_class(
    kwargs: dict[str, Any], option: str, fix: str
) -> None:
    with refused(option, fix):
        Config(issuers=[issuer()], audience="api", **kwargs)


@pytest.mark.parametrize(
    ("build", "option"),
    [(lambda: StaticKeys(NOT_TEXT), "StaticKeys.keys"),
     (lambda: JWKSFile(NOT_TEXT), "JWKSFile.path"),
     (lambda: JWKSFile(""), "JWKSFile.path"),
     (lambda: JWKSUrl(NOT_TEXT), "JWKSUrl.url"),
     (lambda: OIDCDiscovery(NOT_TEXT), "OIDCDiscovery.url"),
     (lambda: SharedSecret(NOT_TEXT), "SharedSecret.secret")],
)
def test_key_sources_refuse_values_of_the_wrong_type(build: Callable[[], object], option: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(option)):
        build()


# --- well-formed configurations: any sequence is accepted, a tuple is stored -------------------------
def test_lists_and_generators_are_stored_as_tuples(es256_key: Key) -> None:
    generator: Any = (s for s in ["read"])  # typed Sequence; any iterable is accepted at run time
    rule = Rule("/items/{id}", methods=["get"], scopes=generator)
    config = Config(
        issuers=[Issuer(ISSUER, algorithms=["ES256"], keys=StaticKeys(public_jwks(es256_key)),
                        audiences=["api"], typ=["at+jwt"], required_claims=["sub"])],
        audience=["api", "api2"],
        sources=[HeaderSource(), CookieSource()],
        rules=[rule],
        dpop=DPoPSettings(algorithms=["ES256"], allowed_hosts=["API.example.com"],
                          nonce_secret=secrets.token_bytes(32)),
        keys=KeyPolicy(),
    )
    assert rule.methods == ("GET", "HEAD") and rule.scopes == ("read",)
    assert isinstance(config.issuers, tuple) and isinstance(config.rules, tuple)
    assert isinstance(config.sources, tuple) and config.audience == ("api", "api2")
    first = config.issuers[0]
    assert (first.algorithms, first.audiences, first.typ, first.required_claims) == (
        ("ES256",), ("api",), ("at+jwt",), ("sub",))
    assert config.dpop is not None and config.dpop.allowed_hosts == ("api.example.com",)
    assert hash(rule) == hash(Rule("/items/{id}", methods=("GET",), scopes=("read",)))
    Authenticator(config)


def test_the_readme_quick_start_type_checks_and_builds(es256_key: Key) -> None:
    """The README's shape, plain lists and all; ``mypy --strict`` checks this file."""
    config = Config(
        issuers=[Issuer("https://idp.example", algorithms=["ES256"],
                        keys=StaticKeys(public_jwks(es256_key)))],
        audience="api",
        rules=[Rule("/health", access="public"), Rule("/admin/*", methods=["POST"], scopes=["admin"])],
    )
    assert Authenticator(config).config is config
