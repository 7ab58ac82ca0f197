"""HMAC key confusion (CVE-2015-9235, CVE-2016-10555, CVE-2022-29217, CVE-2024-33663).

The attacker MACs a token with the issuer's PUBLIC key, in every encoding it can download
(PEM, PKCS#1, DER, OpenSSH, JWK/JWKS JSON, raw EC point), and sets ``alg`` to HS*. A verifier
that lets the header choose the algorithm for a key would accept it (RFC 8725 §2.1, §3.1).
"""

from __future__ import annotations

import pytest

from jwt_middleware import ConfigError, Issuer, SharedSecret, StaticKeys
from jwt_middleware.testing import public_jwks

from . import corpus
from .harness import Harness, params

CASES = corpus.key_confusion_cases()


def test_baseline_hmac_token_with_the_real_secret_is_accepted(harness: Harness) -> None:
    harness.assert_accepted(harness.bearer(corpus.hmac_token(corpus.hs_secret(), issuer=corpus.ISSUER_HS)))


@pytest.mark.parametrize("case", params(CASES))
def test_rejects_hmac_signed_with_public_key(harness: Harness, case: corpus.Case) -> None:
    harness.assert_case(case, harness.bearer(case.token))


# Construction-time refusals: configurations that would make key confusion possible.
@pytest.mark.parametrize("form", ["pem", "pem-no-newline", "jwk-json", "jwks-json", "openssh", "der"])
@pytest.mark.parametrize("key_name", ["es", "rs"])
def test_config_refuses_public_key_as_shared_secret(form: str, key_name: str) -> None:
    """A public key given as an HMAC secret lets anyone forge HS tokens (CVE-2022-29217 used
    OpenSSH keys; python-jose #414 used DER): refused whatever its encoding."""
    key = getattr(corpus.keys(), key_name)
    with pytest.raises(ConfigError):
        SharedSecret(corpus.public_forms(key)[form])


def test_config_refuses_mixing_hmac_and_asymmetric_algorithms_for_one_issuer() -> None:
    with pytest.raises(ConfigError):
        Issuer(corpus.ISSUER, algorithms=("ES256", "HS256"), keys=StaticKeys(public_jwks(corpus.keys().es)))


@pytest.mark.parametrize("casing", corpus.NONE_CASINGS)
def test_config_refuses_alg_none(casing: str) -> None:
    with pytest.raises(ConfigError):
        Issuer(corpus.ISSUER, algorithms=(casing,), keys=StaticKeys(public_jwks(corpus.keys().es)))


def test_config_refuses_hmac_algorithm_over_public_keys() -> None:
    with pytest.raises(ConfigError):
        Issuer(corpus.ISSUER, algorithms=("HS256",), keys=StaticKeys(public_jwks(corpus.keys().es)))
