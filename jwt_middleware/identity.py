"""Identity: who the verified token says the caller is (a deeply read-only value)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Final, NoReturn, Self

from ._types import Claims

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Identity", "ReadOnlyDict", "identity_from_claims", "plain", "qualified_ids", "read_only"]

_READ_ONLY: Final = (
    "Identity.claims is read-only (one Identity serves every request with its token); "
    "take a copy to change: identity.to_dict()['claims']"
)


class ReadOnlyDict(dict[str, Any]):
    """A dict that refuses every change; each dict inside it is one too, and each list a tuple.

    Reads are a dict's own (``claims["roles"]``, ``.get``, ``in``, iteration, ``json.dumps``);
    every mutator raises ``TypeError``. ``dict(d)`` is a shallow mutable copy, and
    :meth:`Identity.to_dict` a deep plain one.
    """

    # Why a dict subclass, not MappingProxyType: json.dumps, pydantic's serialiser (FastAPI's
    # response model), dataclasses.asdict (FastAPI's jsonable_encoder, Flask's JSON provider),
    # pickle and copy.deepcopy all refuse a mappingproxy, so an Identity could be neither
    # returned from a route nor pickled; a dict subclass passes through each as a dict, and a
    # read stays the C dict lookup. What it guards against is a handler changing what it was
    # handed as if it were its own; code that calls dict.__setitem__ on it on purpose can still
    # write, as object.__setattr__ can write a frozen dataclass.
    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = dict.__new__(cls)
        for key, value in dict(*args, **kwargs).items():
            _DICT_SET(self, key, read_only(value))
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Filled by ``__new__``: ``dict.__init__`` would merge into the dict again."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[type[Self], tuple[dict[str, Any]]]:
        return (type(self), (dict(self),))


_DICT_SET: Final = dict.__setitem__
_DICT_NEW: Final = dict.__new__
_DICT_UPDATE: Final = dict.update
_SCALARS: Final = (str, int, float, bool, type(None))
#: what JSON decodes to that could be changed in place
_MUTABLE_JSON: Final = frozenset({dict, list})


def read_only(value: Any) -> Any:
    """``value`` with every mapping in it a :class:`ReadOnlyDict` and every list a tuple."""
    if value.__class__ in _SCALARS or isinstance(value, ReadOnlyDict):
        return value
    if isinstance(value, Mapping):
        return ReadOnlyDict(value)
    if isinstance(value, (list, tuple)):
        return tuple([read_only(item) for item in value])
    return value


def plain(value: Any) -> Any:
    """A deep copy of ``value`` in JSON's own types: mappings as dicts, tuples as lists, sets sorted."""
    if value.__class__ in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(item) for item in value)
    return value


def _issuer_part(issuer: str) -> str:
    return issuer.replace("%", "%25").replace("#", "%23")


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified caller. Deeply read-only, so one value can serve every request of a token:
    ``claims`` is a :class:`ReadOnlyDict` (its dicts read-only, its lists tuples), ``scopes`` a
    frozenset, ``amr`` a tuple. :meth:`to_dict` gives a plain, JSON-ready copy.
    """

    subject: str | None
    issuer: str
    scopes: frozenset[str]
    claims: Mapping[str, Any]
    token_id: str | None = None
    expires_at: float | None = None
    issued_at: float | None = None
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    #: RFC 7800 confirmation: the JWK SHA-256 thumbprint a DPoP-bound token names (RFC 9449 §6)
    binding: str | None = None
    #: the OpenID session the token belongs to (``sid``, OpenID Connect Front-Channel Logout §3)
    session_id: str | None = None
    #: the client the token was issued to: ``client_id`` (RFC 9068 §2.2), else ``azp``
    #: (OpenID Connect Core §2, what Keycloak and Auth0 put in access tokens)
    client_id: str | None = None

    def __post_init__(self) -> None:
        """``Identity(...)`` and ``dataclasses.replace``: the read-only members the builder gives."""
        if not isinstance(self.claims, ReadOnlyDict):
            object.__setattr__(self, "claims", ReadOnlyDict(self.claims))
        if self.scopes.__class__ is not frozenset:
            object.__setattr__(self, "scopes", frozenset(self.scopes))
        if self.amr.__class__ is not tuple:
            object.__setattr__(self, "amr", tuple(self.amr))

    def has_scopes(self, required: tuple[str, ...] | frozenset[str]) -> bool:
        return self.scopes.issuperset(required)

    @property
    def qualified_subject(self) -> str | None:
        """The subject named with its issuer, ``"https://idp.example#alice"``; None without ``sub``.

        A ``sub`` is unique only within its issuer (RFC 7519 §4.1.2; OpenID Connect Core §2:
        "the sub and iss Claims, used together, are the only Claims that an RP can rely upon
        as a stable identifier"), so with several issuers only the pair names one user.

        Why this form cannot collide: ``%`` and ``#`` in the issuer are written ``%25`` and
        ``%23``, so the issuer part holds no ``#``, the first ``#`` ends it, and the rest is
        the subject exactly as sent; percent-encoding is reversible, so the string gives back
        the one (iss, sub) pair it came from. An OpenID issuer is an https URL without a
        fragment (OpenID Connect Discovery §3, RFC 8414 §2), so its part reads as itself.
        """
        if self.subject is None:
            return None
        return _issuer_part(self.issuer) + "#" + self.subject

    def user_id(self, qualified: bool) -> str:
        """The framework's user id: :attr:`qualified_subject` when ``qualified`` (see
        :func:`qualified_ids`), else the bare ``sub``; ``""`` for a token without ``sub``."""
        return (self.qualified_subject if qualified else self.subject) or ""

    def to_dict(self) -> dict[str, Any]:
        """A plain copy for ``json.dumps``, ``jsonify`` or a route's return value: every field,
        plus ``qualified_subject``; scopes a sorted list, claims plain dicts and lists."""
        data = {name: plain(getattr(self, name)) for name in _FIELD_NAMES}
        data["qualified_subject"] = self.qualified_subject
        return data


_FIELD_NAMES: Final = tuple(f.name for f in fields(Identity))


def qualified_ids(config: Config) -> bool:
    """Whether framework user ids are issuer-qualified: when more than one issuer is trusted.

    With one issuer every ``sub`` comes from it, and the bare ``sub`` stays the id (as before).
    """
    return len(config.issuers) > 1


def _scopes(claims: Claims) -> frozenset[str]:
    """``scope`` (RFC 8693 §4.2, RFC 9068 §2.2.3: space-separated) and ``scp`` (string or list)."""
    scope = claims.get("scope")
    scp = claims.get("scp")
    if scp is None:  # the usual case: straight to the frozenset, no set in between
        return frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    found: set[str] = set(scope.split()) if isinstance(scope, str) else set()
    if isinstance(scp, str):
        found.update(scp.split())
    elif isinstance(scp, list):
        found.update(s for s in scp if isinstance(s, str))
    return frozenset(found)


def _number(value: object) -> float | None:
    # (a tuple, not int | float: that builds a union object on every call)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _read_only_claims(claims: Claims) -> ReadOnlyDict:
    """A read-only copy of freshly decoded claims (JSON's types only: no ReadOnlyDict.__new__ walk)."""
    frozen: ReadOnlyDict = _DICT_NEW(ReadOnlyDict)
    _DICT_UPDATE(frozen, claims)
    # Why the scan in C first: most payloads are flat (strings and numbers), and for those the
    # loop in Python never runs. Nesting is bounded by the gate (MAX_JSON_DEPTH).
    if not _MUTABLE_JSON.isdisjoint(map(type, claims.values())):
        for key, value in claims.items():
            if value.__class__ in _MUTABLE_JSON:
                _DICT_SET(frozen, key, read_only(value))
    return frozen


def _setter(name: str) -> Callable[[Identity, Any], None]:
    setter: Callable[[Identity, Any], None] = Identity.__dict__[name].__set__
    return setter


# Why slot setters on a bare instance, not Identity(...): the frozen dataclass's __init__ sets
# each field through object.__setattr__ (its own __setattr__ refuses), more than half the cost
# of building the identity on every request; a slot's member descriptor is the C setter behind
# it. Identity itself is unchanged: Identity(...) and dataclasses.replace() work as ever. In
# field order: a field added to Identity makes the unpacking below fail loudly (and
# tests/core/test_identity_fast.py compares the result with Identity(...) field by field).
_SETTERS: Final = tuple(_setter(f.name) for f in fields(Identity))
_NEW: Final = object.__new__


def identity_from_claims(claims: Claims, issuer: str) -> Identity:
    """Build the Identity of checked claims (types were verified by the claim checks).

    Built once per verified token and then shared by every request carrying it, so each member
    is read-only (a copy of ``claims``; ``claims`` itself is left as it is).
    """
    (
        set_subject,
        set_issuer,
        set_scopes,
        set_claims,
        set_token_id,
        set_expires_at,
        set_issued_at,
        set_auth_time,
        set_acr,
        set_amr,
        set_binding,
        set_session_id,
        set_client_id,
    ) = _SETTERS
    get = claims.get
    amr = get("amr")
    cnf = get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    acr = get("acr")
    sid = get("sid")
    client_id = get("client_id")
    if client_id.__class__ is not str:
        client_id = get("azp")
    identity: Identity = _NEW(Identity)
    set_subject(identity, get("sub"))
    set_issuer(identity, issuer)
    set_scopes(identity, _scopes(claims))
    set_claims(identity, _read_only_claims(claims))
    set_token_id(identity, get("jti"))
    set_expires_at(identity, _number(get("exp")))
    set_issued_at(identity, _number(get("iat")))
    set_auth_time(identity, _number(get("auth_time")))
    set_acr(identity, acr if isinstance(acr, str) else None)
    set_amr(identity, tuple(a for a in amr if isinstance(a, str)) if isinstance(amr, list) else ())
    set_binding(identity, jkt if isinstance(jkt, str) else None)
    # Why here: the revocation check reads these on every request, cache hits included, so
    # they are worked out once per verified token, never looked up in the claims again.
    set_session_id(identity, sid if sid.__class__ is str and sid else None)
    set_client_id(identity, client_id if client_id.__class__ is str and client_id else None)
    return identity
