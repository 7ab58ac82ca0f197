"""Instruction counts per request with revocation on (valgrind callgrind), ratios from one run.

Run: PYTHONHASHSEED=0 python benchmarks/callgrind_revocation.py     (needs valgrind; about 3 minutes)

Cases (each N = 1 and N = 301 requests in a fresh interpreter; the difference / 300 is one request):
- repeat-bare: bare Starlette; repeat-ours / repeat-rev: our middleware on a repeated token
  (a verified-cache hit) without / with a MemoryRevocationStore holding 10,000 revoked jti
  entries and 1,000 subject cut-offs, all of other tokens (the check runs, nothing matches);
- unique-ours / unique-rev: a fresh ES256 token per request, without / with that store.
The key and the tokens are made once by the parent and read by every child (no minting in the
measured part, the same tokens for every case). Targets (issue 12): repeat-rev <= 1.3x repeat-bare; unique-rev <= 1.05x unique-ours.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _callgrind import REQUESTS, dispatch, per_request, require_valgrind, send_each, send_repeated

REVOKED = 10_000
CUT_OFFS = 1_000
#: the key (private JWK) and 301 tokens every child reads, written by main()
FIXTURE = Path(os.environ.get("REVWIRE_BENCH_FIXTURE", "/tmp/callgrind_revocation.json"))


def _app(revocation: bool, key: object) -> object:
    from bench_asgi import AUD, ISS, starlette_app

    from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, StaticKeys
    from jwt_middleware.revocation import MemoryRevocationStore
    from jwt_middleware.testing import public_jwks

    config = Config(issuers=[Issuer(ISS, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))],  # type: ignore[arg-type]
                    audience=AUD)
    if not revocation:
        return JWTMiddleware(starlette_app(), Authenticator(config))
    store = MemoryRevocationStore()
    until = time.time() + 3600
    for i in range(REVOKED):
        store.revoke_token(ISS, f"other-jti-{i}", until)
    for i in range(CUT_OFFS):
        store.revoke_subject(ISS, f"other-user-{i}", time.time())
    return JWTMiddleware(starlette_app(), Authenticator(config, revocation_store=store))


def run_case(case: str, n: int) -> None:
    """One measured workload (called in the child interpreter)."""
    from bench_asgi import starlette_app
    from joserfc.jwk import ECKey

    fixture = json.loads(FIXTURE.read_text())
    key = ECKey.import_key(fixture["key"])
    if case.startswith("repeat-"):
        app = starlette_app() if case == "repeat-bare" else _app(case == "repeat-rev", key)
        send_repeated(app, fixture["tokens"][0], n)
        return
    send_each(_app(case == "unique-rev", key), fixture["tokens"][:n])


def main() -> None:
    require_valgrind()
    from bench_asgi import AUD, ISS

    from jwt_middleware.testing import make_key, mint

    key = make_key("ES256")
    tokens = [mint(key, issuer=ISS, audience=AUD, lifetime=3600) for _ in range(REQUESTS)]
    FIXTURE.write_text(json.dumps({"key": key.as_dict(private=True), "tokens": tokens}))
    cases = ("repeat-bare", "repeat-ours", "repeat-rev", "unique-ours", "unique-rev")
    r = {case: per_request(__file__, case) for case in cases}
    for case, value in r.items():
        print(f"{case:<12} {value:12,.0f} instructions/request")
    print()
    print(f"repeated token, revocation on vs bare Starlette: {r['repeat-rev'] / r['repeat-bare']:5.3f}x  (target <= 1.3x)")
    print(f"repeated token, revocation on vs off:            {r['repeat-rev'] / r['repeat-ours']:5.3f}x  "
          f"({r['repeat-rev'] - r['repeat-ours']:,.0f} instructions added)")
    print(f"unique ES256, revocation on vs off:              {r['unique-rev'] / r['unique-ours']:5.3f}x  (target <= 1.05x)")


if __name__ == "__main__":
    dispatch(sys.argv, run_case, main)
