"""Rule lookup cost for 1, 100 and 1,000 rules: the segment trie against the old linear matcher.

Run: python benchmarks/bench_matcher.py              (wall time, best of 5 rounds, same run)
     python benchmarks/bench_matcher.py --callgrind  (instructions per match; needs valgrind)

The baseline is a copy of the matcher this project shipped before the trie (a scan of every rule
in order), kept here unchanged so the ratio is measured in the same run on the same machine.
Rule sets alternate exact rules (``/svcN/health``) and prefix rules (``/svcN/*``); the trie-only
rows add one-segment parameter rules (``/svcN/items/{id}``), which the old matcher could not
express. Requests hit the first rule, the last rule, and no rule (the default): a scan pays for
every rule it passes, the trie for the segments of the path.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import subprocess
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from jwt_middleware.config import Access, Rule  # noqa: E402
from jwt_middleware.core.policy import Matcher  # noqa: E402
from jwt_middleware.request import RequestView  # noqa: E402

SIZES = (1, 100, 1000)
CALLS = 20_000
CG_CALLS = 2_000  # matches per callgrind run (the rest of the run is subtracted)
ROUNDS = 5


class LinearMatcher:
    """The matcher before the trie (jwt_middleware/core/policy.py at ec29a6b), minus the CORS
    preflight bypass, which the benchmark's GET requests never reach."""

    def __init__(self, rules: tuple[Rule, ...], default_access: Access = "required") -> None:
        self._rules = rules
        self._default = Rule("/", access=default_access)

    def match(self, request: RequestView) -> Rule:
        path = request.path
        method = request.method
        for rule in self._rules:
            if rule.methods is not None and method not in rule.methods:
                continue
            pattern = rule.path
            if pattern[-1] == "*":
                prefix = pattern[:-1]
                if path.startswith(prefix) or path == prefix.rstrip("/"):
                    return rule
            elif path == pattern:
                return rule
        return self._default


def rules(n: int, *, params: bool = False) -> tuple[Rule, ...]:
    """n rules: exact and prefix in turn (or parameter and prefix with ``params``)."""
    out = []
    for i in range(n):
        if i % 2:
            out.append(Rule(f"/svc{i}/*", scopes=("s",)))
        elif params:
            out.append(Rule(f"/svc{i}/items/{{id}}", access="public"))
        else:
            out.append(Rule(f"/svc{i}/health", access="public"))
    return tuple(out)


def requests(n: int, *, params: bool = False) -> dict[str, RequestView]:
    last = n - 1
    last_path = f"/svc{last}/x/y" if last % 2 else (f"/svc{last}/items/7" if params else f"/svc{last}/health")
    first_path = "/svc0/items/7" if params else "/svc0/health"
    return {"first": RequestView("GET", first_path), "last": RequestView("GET", last_path),
            "none": RequestView("GET", "/other/path/here")}


def same(a: Rule, b: Rule) -> bool:
    """The same rule (each matcher makes its own default rule, equal in value)."""
    return a == b


def best(matcher: LinearMatcher | Matcher, request: RequestView) -> float:
    """Best of ROUNDS rounds, in ns per match."""
    match = matcher.match
    return min(timeit.repeat(lambda: match(request), number=CALLS, repeat=ROUNDS)) / CALLS * 1e9


def wall_time() -> None:
    print(f"{'rules':>6} {'request':<8} {'linear ns':>10} {'trie ns':>9} {'linear/trie':>12}")
    for n in SIZES:
        ruleset = rules(n)
        old, new = LinearMatcher(ruleset), Matcher(ruleset)
        for name, request in requests(n).items():
            assert same(old.match(request), new.match(request)), (n, name)
            linear, trie = best(old, request), best(new, request)
            print(f"{n:>6} {name:<8} {linear:>10.0f} {trie:>9.0f} {linear / trie:>11.2f}x")
    print("\ntrie with parameter rules (no linear equivalent):")
    for n in SIZES:
        matcher = Matcher(rules(n, params=True))
        cells = "  ".join(f"{name} {best(matcher, r):5.0f} ns" for name, r in requests(n, params=True).items())
        print(f"{n:>6} {cells}")


# --- callgrind ----------------------------------------------------------------------------------------
def run_case(kind: str, n: int, name: str, count: int) -> None:
    """One measured workload, in the child interpreter under callgrind (collector off: one full
    collection in one run and not the other would move the figure more than a match costs)."""
    gc.disable()
    params = kind == "trie-params"
    ruleset = rules(n, params=params)
    matcher = LinearMatcher(ruleset) if kind == "linear" else Matcher(ruleset)
    request = requests(n, params=params)[name]
    match = matcher.match
    for _ in range(count):
        match(request)


def instructions(kind: str, n: int, name: str, count: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--case", kind, str(n), name, str(count)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))  # type: ignore[union-attr]


def per_match(kind: str, n: int, name: str) -> float:
    """Instructions of one match: two runs that differ only in the number of matches."""
    return (instructions(kind, n, name, CG_CALLS + 1) - instructions(kind, n, name, 1)) / CG_CALLS


def callgrind() -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    instructions("trie", 1, "first", 1)  # Why: writes stale .pyc files before anything is measured
    print(f"{'rules':>6} {'request':<8} {'linear instr':>13} {'trie instr':>11} {'linear/trie':>12} "
          f"{'trie+params':>12}")
    for n in SIZES:
        for name in ("first", "last", "none"):
            linear, trie = per_match("linear", n, name), per_match("trie", n, name)
            params = per_match("trie-params", n, name)
            print(f"{n:>6} {name:<8} {linear:>13,.0f} {trie:>11,.0f} {linear / trie:>11.2f}x {params:>12,.0f}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--case":
        run_case(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif sys.argv[1:] == ["--callgrind"]:
        callgrind()
    else:
        wall_time()
