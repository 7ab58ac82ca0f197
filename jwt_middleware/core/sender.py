"""Sender constraint: a DPoP-bound token needs a valid proof by its key (RFC 9449 §4.3, §6.1, §7)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from ..config import Rule
from ..errors import AuthError, DPoPRequired, InvalidToken, UseDPoPNonce
from ..identity import Identity
from ..proxies import TrustedProxies
from ..request import RequestView
from .dpop import DPoPPolicy, ProofKeyCache, check_binding, check_proof, proof_header
from .dpop_nonce import DPoPNonces
from .effects import Effect
from .extract import Token
from .replay import consume_once, proof_key
from .request_url import request_url

__all__ = ["SenderPolicy", "check_sender"]


@dataclass(frozen=True, slots=True)
class SenderPolicy:
    """DPoP settings as the core needs them (built once from Config.dpop and Config.trusted_proxies)."""

    proof: DPoPPolicy
    nonces: DPoPNonces | None
    external_base_url: str | None
    #: whose forwarded scheme and host to believe for ``htu`` (None: none)
    proxies: TrustedProxies | None
    #: the hosts proofs may name, as ``request_url.host_key`` forms; None with external_base_url
    allowed_hosts: frozenset[str] | None
    key_cache: ProofKeyCache


def check_sender(
    request: RequestView,
    token: Token,
    identity: Identity,
    rule: Rule,
    policy: SenderPolicy | None,
    now: float,
    *,
    fail_open: bool,
) -> Generator[Effect, object, None]:
    """Bearer: refuse bound tokens and DPoP-only routes. DPoP: check the proof, then consume its jti.

    :raises InvalidToken: a DPoP-bound token sent as Bearer (§7.2)
    :raises DPoPBindingMismatch: the proof's key is not the token's ``cnf.jkt`` (§6.1, §7.1)
    :raises DPoPRequired: a Bearer token on a DPoP-only route
    :raises InvalidRequest: the request's host is not one the API serves (``allowed_hosts``)
    :raises InvalidDPoPProof: a missing, malformed, stale or replayed proof
    :raises UseDPoPNonce: nonces are on and the proof lacks a current one (§8); carries DPoP-Nonce
    """
    if token.scheme != "dpop":
        if identity.binding is not None:
            raise InvalidToken("bound_token_without_proof", "This access token must be used with DPoP")
        if rule.dpop == "required":
            raise DPoPRequired("dpop_required")
        return
    assert policy is not None  # the pipeline refuses the DPoP scheme when DPoP is off
    try:
        yield from _check_dpop(request, token, identity, policy, now, fail_open=fail_open)
    except AuthError as refusal:
        if rule.dpop == "required" and refusal.scheme == "DPoP":
            refusal.only_own_scheme = True  # Why: this route takes no Bearer token (RFC 9110 §11.6.1)
        raise


def _check_dpop(
    request: RequestView,
    token: Token,
    identity: Identity,
    policy: SenderPolicy,
    now: float,
    *,
    fail_open: bool,
) -> Generator[Effect, object, None]:
    """The proof for this request (RFC 9449 §4.3), its key the token's (§6.1), its jti once (§11.1)."""
    nonces = policy.nonces
    try:
        proof = check_proof(
            proof_header(request),
            method=request.method,
            url=request_url(
                request,
                external_base_url=policy.external_base_url,
                proxies=policy.proxies,
                allowed_hosts=policy.allowed_hosts,
            ),
            access_token=token.value,
            policy=policy.proof,
            now=now,
            nonce_valid=None if nonces is None else (lambda nonce: nonces.is_valid(nonce, now)),
            key_cache=policy.key_cache,
        )
    except UseDPoPNonce as refusal:
        if nonces is not None:
            refusal.headers["DPoP-Nonce"] = nonces.issue(now)
        raise
    check_binding(identity.binding, proof)
    yield from consume_once(
        proof_key(proof.jkt, proof.jti), proof.replay_until, fail_open=fail_open, proof=True
    )
