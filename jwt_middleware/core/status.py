"""The Token Status List step: refuse a verified token whose entry in its issuer's list is not VALID.

draft-ietf-oauth-status-list §8.3: a token's ``status.status_list {idx, uri}`` names an entry
of the Status List Token at ``uri``; 0 passes, 1 is ``token_revoked``, 2 ``token_suspended``,
anything else ``token_status_unknown`` (all 401 ``invalid_token``). Runs on every request of
an issuer that has a ``status_list`` policy, verified-cache hits included (a token's status
changes while its verification stays cached), after revocation and before scopes.

Pure: the cached list answers in-process; a list that is absent or due is asked for with a
:class:`FetchStatusList` effect, answered by the drivers' loader (one fetch per list at a
time), after which the cache is read again.

Why an issuer without a policy ignores the claim (not refuses it): RFC 7519 §4 says claims an
implementation does not understand "MUST be ignored unless otherwise required by the
application", and refusing would break every deployment whose IdP adds ``status`` for other
relying parties the day it starts doing so. Checking is opted into per issuer
(``Issuer(status_list=StatusListPolicy())``: where its lists may live, how long they are
trusted), and ``StatusListPolicy(required=True)`` is the strict side: that issuer's tokens
without a ``status`` claim are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from ..errors import InvalidToken, Unavailable
from ..identity import Identity
from ..revocation.status_list import (
    StatusList,
    StatusListRules,
    StatusReference,
    check_token_status,
    reference_of,
)
from ..revocation.status_list_cache import StatusListCache
from .effects import FetchStatusList
from .verified import put_bounded

__all__ = ["MISSING_REASON", "UNAVAILABLE_REASON", "StatusCheck", "StatusDue", "finish_status", "status_due"]

#: the list could not be had past its stale window (503, or an audited pass when open)
UNAVAILABLE_REASON: Final = "status_list_unavailable"
#: a token without a status claim under ``StatusListPolicy(required=True)``
MISSING_REASON: Final = "status_claim_missing"
_MISSING: Final = "The access token carries no status claim"
#: tokens whose reference is remembered per issuer (a full memo forgets its oldest sixteenth)
_MAX_REFERENCES: Final = 4096


@dataclass(frozen=True, slots=True)
class StatusCheck:
    """One issuer's status-list state as the step reads it: its rules, its cache, and the
    references of the tokens it has read.

    Why remember references: checking a ``uri`` against the issuer's allowlist parses it
    (``urlsplit``, the unsafe-path pattern): about 7 µs, five times a whole verified-cache
    hit. A cached token's Identity, and so its claims object, is the same on every request,
    so the reference is read once per token, found again by the claims' identity. The memo
    holds each claims object it names, so an ``id`` is never reused while it is there, and an
    entry is only trusted when it names that very object (``is``). A refused reference is not
    remembered: it raises every time.
    """

    rules: StatusListRules
    cache: StatusListCache
    references: dict[int, tuple[Mapping[str, Any], StatusReference | None]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @property
    def issuer(self) -> str:
        return self.rules.issuer

    def reference(self, claims: Mapping[str, Any]) -> StatusReference | None:
        """:func:`reference_of` for these claims, read once per claims object.

        :raises InvalidToken: as :func:`reference_of`
        """
        found = self.references.get(id(claims))
        if found is not None and found[0] is claims:
            return found[1]
        reference = reference_of(claims, self.rules)
        put_bounded(self.references, id(claims), (claims, reference), _MAX_REFERENCES)
        return reference


class StatusDue(NamedTuple):
    """The list must be fetched before (``effect.blocking``) or while (not blocking) the token is
    judged: yield ``effect``, then :func:`finish_status`."""

    effect: FetchStatusList
    reference: StatusReference
    cache: StatusListCache
    #: the stale list that judges the token while a background refetch runs (None: blocking)
    stale: StatusList | None


def status_due(identity: Identity, check: StatusCheck, now: float, fail_open: bool) -> StatusDue | bool:
    """Judge the token by its issuer's cached list, or say which fetch must come first.

    :returns: False: the token passed (VALID, or no claim and none required); True: it passed
        only because ``fail_open`` and the list cannot be had (the caller audits it); a
        :class:`StatusDue` when a fetch is needed first
    :raises InvalidToken: the claim is malformed or names a place the issuer's lists may not
        live; ``status_claim_missing`` (required); the entry refuses the token; the list was
        refused (``status_list_invalid``: a bad signature, another issuer, a bad format)
    :raises Unavailable: ``status_list_unavailable`` (503, Retry-After), failing closed
    """
    reference = check.reference(identity.claims)
    if reference is None:
        if check.rules.policy.required:
            raise InvalidToken(MISSING_REASON, _MISSING)
        return False
    cache = check.cache
    try:
        status_list, need = cache.lookup(reference.uri, now)
    except Unavailable:
        if not fail_open:
            raise
        return True
    if need is not None:
        effect = FetchStatusList(check.issuer, reference.uri, need.blocking)
        return StatusDue(effect, reference, cache, None if need.blocking else status_list)
    check_token_status(status_list, reference)  # type: ignore[arg-type]  # set when no fetch is due
    return False


def finish_status(due: StatusDue, now: float, fail_open: bool) -> bool:
    """Judge the token once the effect of :func:`status_due` was answered.

    :returns: True when it passed only because ``fail_open`` (the caller audits it), else False
    :raises InvalidToken: as :func:`status_due`
    :raises Unavailable: as :func:`status_due`
    """
    status_list = due.stale
    if status_list is None:
        try:
            status_list = due.cache.after_fetch(due.reference.uri, now)
        except Unavailable:
            if not fail_open:
                raise
            return True
    check_token_status(status_list, due.reference)
    return False
