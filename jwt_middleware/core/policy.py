"""Matcher: which Rule covers a request, first match in configuration order, looked up by segment.

Exact rules sit in one dict keyed by path (``/x`` and ``/x/`` both); parameter and prefix rules
in a trie of path segments. A lookup costs one dict probe plus, when a trie rule could still win,
a walk as deep as the path, whatever the number of rules: each trie node is reached by one
sequence of segments, so it is visited at most once. Every slot holds, per method, the
lowest-index rule for that method there, so the walk returns the rule a scan in configuration
order would have found first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final, Literal

from ..config import PARAM_CONVERTORS, Access, Rule, pattern_segments
from ..request import RequestView

__all__ = ["PREFLIGHT", "Matcher"]

PREFLIGHT: Final = Rule("/", access="public")

#: ``{method, or None for every method: (rule index, rule)}``. Once resolved (:func:`_resolve`),
#: a method's entry is already the lower of its own rule and the every-method rule, so a lookup
#: is ``slot.get(method) or slot.get(None)``.
_Slot = dict[str | None, tuple[int, Rule]]
_Candidate = tuple[int, Rule] | None


class _Node:
    """One trie node: literal children, parameter children, the rules ending here (``end``)
    and the prefix rules covering this node and everything below it (``rest``)."""

    __slots__ = ("end", "literal", "params", "rest")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        #: (segment test, child); None: any non-empty segment
        self.params: list[tuple[Callable[[str], object] | None, _Node]] = []
        self.end: _Slot = {}
        self.rest: _Slot = {}

    def param(self, convertor: str) -> _Node:
        regex = PARAM_CONVERTORS[convertor]
        test = None if regex is None else re.compile(regex).fullmatch
        for existing, child in self.params:
            if existing == test:
                return child
        child = _Node()
        self.params.append((test, child))
        return child

    def slots(self) -> Iterator[_Slot]:
        yield self.end
        yield self.rest
        for child in (*self.literal.values(), *(child for _, child in self.params)):
            yield from child.slots()


class Matcher:
    """Rules in order: exact (``/health``), one-segment parameters (``/items/{id}``) and prefixes
    (``/admin/*``, ``/files/{rest:path}``, both also covering ``/admin``). ``/x`` and ``/x/`` match
    alike, since routers strip or redirect the final slash.

    :param rules: in configuration order; the first that matches path and method wins
    :param default_access: for a request no rule matches
    :param preflight: "pass" lets a true CORS preflight through as public; "authenticate" does not
    :param match_full_path: match ``root_path + path`` instead of the app's own path
    """

    def __init__(
        self,
        rules: tuple[Rule, ...],
        default_access: Access = "required",
        *,
        preflight: Literal["authenticate", "pass"] = "authenticate",
        match_full_path: bool = False,
    ) -> None:
        self._default = Rule("/", access=default_access)
        self._pass_preflight = preflight == "pass"
        self._full = match_full_path
        self._exact: dict[str, _Slot] = {}
        self._root = _Node()
        self._count = len(rules)
        #: the lowest index of a rule in the trie (``_count``: none); an exact match below it
        #: needs no walk
        self._walk_from = self._count
        for index, rule in enumerate(rules):
            self._add(index, rule)
        for slot in (*self._exact.values(), *self._root.slots()):
            _resolve(slot)

    def _add(self, index: int, rule: Rule) -> None:
        segments = pattern_segments(rule.path)
        if all(kind == "literal" for kind, _ in segments):
            path = "/" + "/".join(text for _, text in segments)
            # Why both spellings here: the request path is then looked up as it is.
            for key in {path, path.rstrip("/") + "/"}:
                _fill(self._exact.setdefault(key, {}), index, rule)
            return
        self._walk_from = min(self._walk_from, index)
        node = self._root
        for kind, text in segments:
            if kind == "rest":
                _fill(node.rest, index, rule)
                return
            node = node.literal.setdefault(text, _Node()) if kind == "literal" else node.param(text)
        _fill(node.end, index, rule)

    def match(self, request: RequestView) -> Rule:
        """The first rule covering the request's path and method, else the default rule."""
        method = request.method
        if self._pass_preflight and method == "OPTIONS" and _is_preflight(request):
            return PREFLIGHT
        if not self._count:
            return self._default
        path = request.full_path if self._full else request.path
        slot = self._exact.get(path)
        best = None if slot is None else slot.get(method) or slot.get(None)
        if self._walk_from < (self._count if best is None else best[0]):
            segments = path[1:].split("/")
            if segments[-1] == "":  # "/" and "/x/": the final slash counts for nothing
                segments.pop()
            best = _walk(self._root, segments, 0, method, best)
        return best[1] if best is not None else self._default


def _fill(slot: _Slot, index: int, rule: Rule) -> None:
    """File a rule under each of its methods, keeping an earlier rule that is already there."""
    for method in rule.methods if rule.methods is not None else (None,):
        slot.setdefault(method, (index, rule))


def _resolve(slot: _Slot) -> None:
    """Let each method's entry be the lower of its own rule and the every-method rule."""
    every = slot.get(None)
    if every is not None:
        for method, candidate in slot.items():
            if every[0] < candidate[0]:
                slot[method] = every


def _walk(node: _Node, segments: list[str], i: int, method: str, best: _Candidate) -> _Candidate:
    """Follow ``segments`` from ``node``: prefix rules on the way, the node's own rules at the end."""
    count = len(segments)
    while True:
        rest = node.rest
        if rest:
            found = rest.get(method) or rest.get(None)
            if found is not None and (best is None or found[0] < best[0]):
                best = found
        if i == count:
            end = node.end
            found = end.get(method) or end.get(None) if end else None
            return found if found is not None and (best is None or found[0] < best[0]) else best
        segment = segments[i]
        i += 1
        next_node = node.literal.get(segment)
        if node.params and segment:
            for test, child in node.params:
                if test is None or test(segment):
                    if next_node is None:  # the one way on: follow it here, not by recursion
                        next_node = child
                    else:
                        best = _walk(child, segments, i, method, best)
        if next_node is None:
            return best
        node = next_node


def _is_preflight(request: RequestView) -> bool:
    """A true CORS preflight (Fetch standard §3.2.2): ``Origin`` and
    ``Access-Control-Request-Method``, and no credentials (a preflight never carries them)."""
    return (
        request.header(b"origin") is not None
        and request.header(b"access-control-request-method") is not None
        and request.header(b"authorization") is None
    )
