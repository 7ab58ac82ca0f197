"""Matcher: which Rule covers a request (first match wins; CORS preflight always passes)."""

from __future__ import annotations

from typing import Final

from ..config import Access, Rule
from ..request import RequestView

__all__ = ["PREFLIGHT", "Matcher"]

PREFLIGHT: Final = Rule("/", access="public")


class Matcher:
    """Rules in order; a path rule is exact (``/health``) or a prefix (``/admin/*``, also ``/admin``)."""

    def __init__(self, rules: tuple[Rule, ...], default_access: Access = "required") -> None:
        self._rules = rules
        self._default = Rule("/", access=default_access)

    def match(self, request: RequestView) -> Rule:
        if request.method == "OPTIONS" and _is_preflight(request):
            return PREFLIGHT
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


def _is_preflight(request: RequestView) -> bool:
    """A CORS preflight (Fetch standard §3.2.2) carries no credentials by design."""
    return (
        request.header(b"origin") is not None and request.header(b"access-control-request-method") is not None
    )
