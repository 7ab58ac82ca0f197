"""Instruction counts per request (valgrind callgrind): repeatable where wall time is noisy.

Run: python benchmarks/callgrind_asgi.py          (needs valgrind; about 2 minutes)

Each case runs N = 1 and N = 301 requests in a fresh interpreter under callgrind; the difference
divided by 300 is the cost of one request, start-up excluded. Unique-token cases mint their tokens
in the measured part, so a mint-only case is subtracted from the floor.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def run_case(case: str, n: int) -> None:
    """One measured workload (called in the child interpreter)."""
    from _harness import asgi_caller, http_scope
    from bench_asgi import AUD, ISS, hand_floor, ours, pyjwt_app, serve_jwks, starlette_app

    from jwt_middleware.testing import make_key, mint, public_jwks

    key = make_key("ES256")
    if case.startswith("repeat-"):
        token = mint(key, issuer=ISS, audience=AUD, lifetime=3600)
        app = starlette_app() if case == "repeat-bare" else ours("ES256", key)
        call = asgi_caller(app, http_scope("/me", [(b"authorization", f"Bearer {token}".encode())]))

        async def repeat() -> None:
            for i in range(n):
                await call(i)

        asyncio.run(repeat())
        return
    tokens = [mint(key, issuer=ISS, audience=AUD, lifetime=3600) for _ in range(n)]
    if case == "unique-mint":
        return
    if case == "unique-floor":
        verify = hand_floor(key.public_key)
        for token in tokens:
            verify(token)
        return
    apps = {"unique-bare": starlette_app, "unique-ours": lambda: ours("ES256", key),
            "unique-pyjwt": lambda: pyjwt_app(serve_jwks(public_jwks(key)))}
    app = apps[case]()
    callers = [asgi_caller(app, http_scope("/me", [(b"authorization", f"Bearer {t}".encode())])) for t in tokens]

    async def unique() -> None:
        for i, caller in enumerate(callers):
            await caller(i)

    asyncio.run(unique())


def instructions(case: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, "--case", case, str(n)],
        capture_output=True, text=True, check=True,
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))  # type: ignore[union-attr]


def per_request(case: str) -> float:
    return (instructions(case, 301) - instructions(case, 1)) / 300


def main() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    r = {case: per_request(case) for case in (
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
    if len(sys.argv) == 4 and sys.argv[1] == "--case":
        run_case(sys.argv[2], int(sys.argv[3]))
    else:
        main()
