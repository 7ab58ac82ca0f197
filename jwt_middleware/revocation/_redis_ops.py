"""Pure Redis helpers of the revocation stores: key names, Lua scripts, encoded entries and messages.

Nothing here performs I/O or imports ``redis``; ``revocation/redis.py`` is the only module that does.

Layout, every key under one hash tag so a script's keys share a Redis Cluster slot::

    {jwt_middleware:revocation}:tokens    sorted set: member ["iss","jti"], score until (epoch s)
    {jwt_middleware:revocation}:cutoffs   hash: field ["kind","iss","value"], value at (epoch s)
    {jwt_middleware:revocation}:seq       integer, incremented by every change
    {jwt_middleware:revocation}:changes   channel: "<seq> <change as JSON>", or "<seq> *" (resync)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from ..errors import ConfigError
from .model import CUT_OFF_KINDS, CutOff, Revocation, RevokedToken

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_STALENESS",
    "DEFAULT_PREFIX",
    "RESTORE_BATCH",
    "RESTORE_SCRIPT",
    "RESYNC",
    "REVOKE_CUT_OFF_SCRIPT",
    "REVOKE_TOKEN_SCRIPT",
    "SCAN_COUNT",
    "TRIM_GRACE",
    "Keys",
    "Message",
    "check_prefix",
    "check_timing",
    "cut_off_args",
    "cut_offs",
    "decode_cut_off",
    "decode_token",
    "encode_change",
    "live_tokens",
    "parse_message",
    "parse_seq",
    "restore_args",
    "seconds",
    "token_args",
]

DEFAULT_PREFIX: Final = "{jwt_middleware:revocation}"
#: Default seconds between heartbeat reads of the sequence number.
DEFAULT_HEARTBEAT: Final = 0.25
#: Default seconds the mirror stays trusted without a confirmation: the longest a revocation
#: made elsewhere can go unseen here while the mirror is still believed.
DEFAULT_MAX_STALENESS: Final = 1.0
#: Token entries are trimmed from Redis this long (seconds) after their ``until``, so a worker
#: whose clock runs behind the trimming one's still finds them on a resync.
TRIM_GRACE: Final = 300.0
#: Entries per page of a resync's HSCAN/ZSCAN, and per restore script call: keeps each Redis
#: call short, so a large state never blocks the server.
SCAN_COUNT: Final = 1000
RESTORE_BATCH: Final = 500
#: The body of a message that tells every follower to resync in full (after a restore).
RESYNC: Final = "*"
_HASH_TAG: Final = re.compile(r"\{[^{}]+\}")

# Why Lua: the change, the sequence number and the message move together, so no follower can
# see a number without its change or a change without its number. Why classic PUBLISH and not
# SPUBLISH: in Redis Cluster a classic message reaches subscribers on every node, so a follower
# may subscribe through any node and keeps receiving across failover and resharding, while a
# sharded channel lives on its slot's primary and the follower must track that node. Changes are
# rare (an operator's or a logout's), so the broadcast costs nothing that matters.
#
# Times travel as the caller's text (Python repr, exact): ARGV is stored verbatim and only
# compared with tonumber, since Lua's tostring would round to 14 digits.

#: KEYS: tokens, seq. ARGV: member, until, trim_before, channel, message body.
REVOKE_TOKEN_SCRIPT: Final = """
local changed = redis.call('ZADD', KEYS[1], 'GT', 'CH', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
if changed == 0 then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], seq .. ' ' .. ARGV[5])
return seq
"""

#: KEYS: cutoffs, seq. ARGV: field, at, channel, message body.
REVOKE_CUT_OFF_SCRIPT: Final = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and tonumber(current) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], seq .. ' ' .. ARGV[4])
return seq
"""

#: KEYS: tokens, cutoffs, seq. ARGV: trim_before, channel, n, then n (member, until) pairs,
#: then (field, at) pairs. Merges a follower's entries that Redis lost; one resync message.
RESTORE_SCRIPT: Final = """
local n = tonumber(ARGV[3])
local changed = 0
for i = 0, n - 1 do
  changed = changed + redis.call('ZADD', KEYS[1], 'GT', 'CH', ARGV[5 + 2 * i], ARGV[4 + 2 * i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for i = 4 + 2 * n, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[2], ARGV[i])
  if not current or tonumber(current) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    changed = changed + 1
  end
end
if changed == 0 then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], seq .. ' *')
return seq
"""


@dataclass(frozen=True, slots=True)
class Keys:
    """The names of one store's keys and channel, all under the prefix's hash tag."""

    tokens: str
    cut_offs: str
    seq: str
    channel: str

    @classmethod
    def under(cls, prefix: str) -> Keys:
        return cls(f"{prefix}:tokens", f"{prefix}:cutoffs", f"{prefix}:seq", f"{prefix}:changes")


@dataclass(frozen=True, slots=True)
class Message:
    """One change-channel message: its sequence number and its change (None: resync in full)."""

    seq: int
    change: Revocation | None


def check_prefix(owner: str, prefix: str) -> str:
    """:raises ConfigError: a prefix without a ``{hash tag}``, too long, or not printable ASCII"""
    if not (0 < len(prefix) <= 64 and prefix.isascii() and prefix.isprintable()) or not _HASH_TAG.search(
        prefix
    ):
        raise ConfigError(
            f"{owner}.prefix: use up to 64 printable ASCII characters holding one {{hash tag}}, "
            f"e.g. {DEFAULT_PREFIX!r}, so every key lands in one Redis Cluster slot"
        )
    return prefix


def encode_change(change: Revocation) -> str:
    """The JSON body of a message: ``["token", iss, jti, until]`` or ``[kind, iss, value, at]``."""
    if isinstance(change, RevokedToken):
        return _json(["token", change.issuer, change.jti, change.until])
    return _json([change.kind, change.issuer, change.value, change.at])


def token_args(keys: Keys, change: RevokedToken, trim_before: float) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of :data:`REVOKE_TOKEN_SCRIPT`."""
    member = _json([change.issuer, change.jti])
    return [keys.tokens, keys.seq], [
        member,
        _time(change.until),
        _time(trim_before),
        keys.channel,
        encode_change(change),
    ]


def cut_off_args(keys: Keys, change: CutOff) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of :data:`REVOKE_CUT_OFF_SCRIPT`."""
    field = _json([change.kind, change.issuer, change.value])
    return [keys.cut_offs, keys.seq], [field, _time(change.at), keys.channel, encode_change(change)]


def restore_args(
    keys: Keys, changes: Iterable[Revocation], trim_before: float
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of :data:`RESTORE_SCRIPT` for one batch of entries."""
    tokens: list[str] = []
    cut_offs: list[str] = []
    for change in changes:
        if isinstance(change, RevokedToken):
            tokens += [_json([change.issuer, change.jti]), _time(change.until)]
        else:
            cut_offs += [_json([change.kind, change.issuer, change.value]), _time(change.at)]
    argv = [_time(trim_before), keys.channel, str(len(tokens) // 2), *tokens, *cut_offs]
    return [keys.tokens, keys.cut_offs, keys.seq], argv


def parse_message(data: bytes | str) -> Message | None:
    """The message, or None when it is malformed (the follower then resyncs rather than guess)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    seq_text, _, body = text.partition(" ")
    if not (seq_text.isascii() and seq_text.isdigit()):
        return None
    if body == RESYNC:
        return Message(int(seq_text), None)
    try:
        kind, issuer, value, time = json.loads(body)
        change: Revocation
        if kind == "token":
            change = RevokedToken(issuer, value, time)
        elif kind in CUT_OFF_KINDS:
            change = CutOff(kind, issuer, value, time)
        else:
            return None
    except (ValueError, TypeError, RecursionError):
        return None
    return Message(int(seq_text), change)


def decode_token(member: bytes | str, score: float) -> RevokedToken | None:
    """A token entry from the sorted set, or None when malformed (skipped, never guessed)."""
    try:
        issuer, jti = json.loads(member)
        return RevokedToken(issuer, jti, score)
    except (ValueError, TypeError):
        return None


def decode_cut_off(field: bytes | str, at: bytes | str) -> CutOff | None:
    """A cut-off from the hash, or None when malformed (skipped, never guessed)."""
    try:
        kind, issuer, value = json.loads(field)
        return CutOff(kind, issuer, value, float(at))
    except (ValueError, TypeError):
        return None


def parse_seq(reply: object) -> int:
    """The sequence number from a GET reply: 0 when the key is absent (a fresh or emptied Redis).

    :raises ValueError: a value that is not a non-negative integer
    """
    if reply is None:
        return 0
    text = reply.decode("ascii") if isinstance(reply, bytes) else str(reply)
    if not (text.isascii() and text.isdigit()):
        raise ValueError("the revocation sequence key holds no integer")
    return int(text)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _time(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("times must be finite")
    return repr(float(value))


def check_timing(owner: str, heartbeat: float, max_staleness: float, timeout: float) -> tuple[float, float]:
    """:raises ConfigError: a heartbeat outside (0, 5], a max_staleness not above heartbeat + timeout"""
    if not seconds(heartbeat) or not 0 < heartbeat <= 5:
        raise ConfigError(
            f"{owner}.heartbeat: use a positive number of seconds up to 5, e.g. {DEFAULT_HEARTBEAT}"
        )
    floor = heartbeat + timeout
    if not seconds(max_staleness) or not floor < max_staleness <= 3600:
        raise ConfigError(
            f"{owner}.max_staleness: use more than heartbeat + timeout ({floor:g} s), at most 3600, "
            f"e.g. {DEFAULT_MAX_STALENESS}: the mirror must survive the wait for one heartbeat"
        )
    return float(heartbeat), float(max_staleness)


def seconds(value: object) -> bool:
    """A number of seconds: an int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | float)


def live_tokens(items: Iterable[Any], now: float) -> list[Revocation]:
    """Decoded ZSCAN pairs (member, score) still live at ``now``; malformed ones are skipped."""
    found: list[Revocation] = []
    for member, score in items:
        if score >= now and (change := decode_token(member, score)) is not None:
            found.append(change)
    return found


def cut_offs(items: Any) -> list[Revocation]:
    """Decoded HSCAN fields; malformed ones are skipped."""
    pairs = items.items() if isinstance(items, dict) else zip(items[::2], items[1::2], strict=True)
    return [change for field, at in pairs if (change := decode_cut_off(field, at)) is not None]
