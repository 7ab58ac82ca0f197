"""The matrix's one judgement, on answers written by hand: it flags what it must, and only that."""

from __future__ import annotations

import pytest

from tests.support.raw_http import Answer

from .matrix import APP_HEADER, MODES, VARIANTS, Mode, Run, Variant, disagreements
from .tokens import Credential

pytestmark = pytest.mark.differential

REFUSE, REWRITE = MODES[0], MODES[1]
NONE = Credential("none")
READ = Credential("read", "reader", frozenset({"read"}), "t1")
FULL = Credential("full", "root", frozenset({"admin", "items:delete", "sub"}), "t2")
PANEL = next(v for v in VARIANTS if v.name == "panel" and v.method == "GET")
DSLASH = next(v for v in VARIANTS if v.name == "lead-dslash")
MARK = (APP_HEADER, "1")
CHALLENGE = ("www-authenticate", 'Bearer realm="api"')


def app(status: int, *headers: tuple[str, str], body: bytes = b"") -> Answer:
    return Answer(status, [MARK, *headers], body)


def panel_ran(subject: str | None) -> tuple[Answer, Run]:
    return app(200, body=b'{"handler": "admin_panel"}'), Run("admin_panel", subject, "/admin/panel")


@pytest.mark.parametrize(("variant", "credential", "answer", "run"), [
    pytest.param(PANEL, READ, *panel_ran("reader"), id="handler-ran-without-its-scope"),
    pytest.param(PANEL, NONE, *panel_ran(None), id="handler-ran-without-a-token"),
    pytest.param(PANEL, FULL, *panel_ran(None), id="handler-saw-no-identity"),
    pytest.param(PANEL, NONE, app(401), None, id="refusal-without-challenge"),
    pytest.param(PANEL, NONE, app(500, CHALLENGE), None, id="app-stack-500"),
    pytest.param(PANEL, FULL, app(404), None, id="full-token-does-not-reach-its-handler"),
    pytest.param(DSLASH, NONE, app(401, CHALLENGE), None, id="refuse-mode-did-not-refuse"),
])
def test_flags(variant: Variant, credential: Credential, answer: Answer, run: Run | None) -> None:
    assert disagreements(variant, REFUSE, credential, answer, run)


@pytest.mark.parametrize(("variant", "mode", "credential", "answer", "run"), [
    pytest.param(PANEL, REFUSE, FULL, *panel_ran("root"), id="handler-ran-with-its-scope"),
    pytest.param(PANEL, REFUSE, READ, app(403, CHALLENGE), None, id="refused-with-challenge"),
    pytest.param(PANEL, REFUSE, NONE, Answer(400), None, id="server-refused-the-request-line"),
    pytest.param(DSLASH, REFUSE, FULL, app(400, CHALLENGE), None, id="refuse-mode-refused"),
    pytest.param(DSLASH, REWRITE, FULL, *panel_ran("root"), id="rewrite-mode-reached-the-handler"),
    pytest.param(DSLASH, REWRITE, READ, app(404), None, id="router-found-nothing"),
])
def test_accepts(variant: Variant, mode: Mode, credential: Credential, answer: Answer, run: Run | None) -> None:
    assert disagreements(variant, mode, credential, answer, run) == []
