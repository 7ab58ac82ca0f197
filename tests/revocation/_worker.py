"""A second process running a RedisRevocationStore, driven over stdin/stdout by the tests.

``python -m tests.revocation._worker <redis-url> <prefix>`` prints ``ready`` once its mirror is
trusted, then ``seen <value> <monotonic_ns>`` for every change that reaches its mirror (the
follower's listener; CLOCK_MONOTONIC is one clock for every process of the machine), and
obeys ``revoke <kind> <value> <time>`` and ``quit`` lines.
"""

from __future__ import annotations

import sys
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwt_middleware.revocation import Revocation, RevokedToken
from jwt_middleware.revocation.redis import RedisRevocationStore

ISSUER = "https://issuer.test"


def main(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    store = RedisRevocationStore(client, prefix)
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def heard(change: Revocation) -> None:
        value = change.jti if isinstance(change, RevokedToken) else change.value
        say(f"seen {value} {time.monotonic_ns()}")

    store.mirror.add_listener(heard)
    store.start()
    deadline = time.monotonic() + 10
    while not store.mirror.trusted(time.time()):
        if time.monotonic() > deadline:
            say("never-trusted")
            return
        time.sleep(0.01)
    say("ready")
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["quit"]:
            break
        if words[:1] == ["revoke"] and len(words) == 4:
            _, kind, value, at = words
            getattr(store, f"revoke_{kind}")(ISSUER, value, float(at))
            say(f"done {value}")
    store.close()
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
