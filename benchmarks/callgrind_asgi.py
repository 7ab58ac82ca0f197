"""Instruction counts per request (valgrind callgrind): repeatable where wall time is noisy.

Run: python benchmarks/callgrind_asgi.py          (needs valgrind; about 2 minutes)

Each case runs N = 1 and N = 301 requests in a fresh interpreter under callgrind (PYTHONHASHSEED=0:
benchmarks/_callgrind.py); the difference divided by 300 is the cost of one request, start-up excluded. Unique-token cases mint their tokens
in the measured part, so a mint-only case is subtracted from the floor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _callgrind import dispatch, per_request, require_valgrind, send_each, send_repeated


def run_case(case: str, n: int) -> None:
    """One measured workload (called in the child interpreter)."""
    from bench_asgi import AUD, ISS, hand_floor, ours, pyjwt_app, serve_jwks, starlette_app

    from jwt_middleware.testing import make_key, mint, public_jwks

    key = make_key("ES256")
    if case.startswith("repeat-"):
        token = mint(key, issuer=ISS, audience=AUD, lifetime=3600)
        send_repeated(starlette_app() if case == "repeat-bare" else ours("ES256", key), token, n)
        return
    tokens = [mint(key, issuer=ISS, audience=AUD, lifetime=3600) for _ in range(n)]
    if case == "unique-mint":
        return
    if case == "unique-floor":
        verify = hand_floor(key.public_key)
        for token in tokens:
            verify(token)
        return
    apps: dict[str, Callable[[], Any]] = {"unique-bare": starlette_app, "unique-ours": lambda: ours("ES256", key),
            "unique-pyjwt": lambda: pyjwt_app(serve_jwks(public_jwks(key)))}
    send_each(apps[case](), tokens)


def main() -> None:
    require_valgrind()
    r = {case: per_request(__file__, case) for case in (
        "repeat-bare", "repeat-ours", "unique-mint", "unique-bare", "unique-ours", "unique-floor", "unique-pyjwt")}
    for case, value in r.items():
        print(f"{case:<14} {value:12,.0f} instructions/request")
    floor = r["unique-floor"] - r["unique-mint"]
    ours_added = r["unique-ours"] - r["unique-bare"]
    pyjwt_added = r["unique-pyjwt"] - r["unique-bare"]
    print()
    print(f"repeated token vs bare Starlette:            {r['repeat-ours'] / r['repeat-bare']:5.2f}x  (target <= 1.25x)")
    print(f"unique ES256 added cost vs hand floor:       {ours_added / floor:5.2f}x  (target <= 1.25x)")
    print(f"Starlette+PyJWT added cost / ours added:     {pyjwt_added / ours_added:5.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    dispatch(sys.argv, run_case, main)
