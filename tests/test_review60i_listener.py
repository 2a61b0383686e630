"""Review 60i, listener 1: the transport's rate-limited log (`RateLimitedLog`, a few lines a
minute) counts only the lines its logger would write (review 60f, listener 3), judged by the
logger's level alone. Where the level lets INFO through but no handler writes it (the handlers
at WARNING: a program that sets its root logger to INFO, or DEBUG, for its own and shows only
warnings; or that sets a level and adds no handler, when Python's last-resort handler writes
warnings only), a peer's junk frames — each dropped with an INFO line no handler writes —
still took the minute's lines, and the warnings about refused and evicted connections were
only counted. A line counts now only when a handler it reaches (the logger's, its parents'
while it propagates, else the last-resort one) is at its level or below."""

from __future__ import annotations

import logging

import pytest

from troth.transport.ratelog import RateLimitedLog


class _Lines(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _parent(*handlers: logging.Handler) -> logging.Logger:
    """A logger at INFO with `handlers`, parent of "transport" (`transport`), both outside
    the logging tree, where pytest adds its capturing handlers (at NOTSET) to the root logger
    and to every logger that does not propagate."""
    parent = logging.Logger("review60i", logging.INFO)
    for handler in handlers:
        parent.addHandler(handler)
    return parent


def _transport(parent: logging.Logger) -> logging.Logger:
    logger = logging.Logger("review60i.transport")
    logger.parent = parent
    return logger


def _junk_then_a_warning(logger: logging.Logger) -> RateLimitedLog:
    log = RateLimitedLog(logger, 3, clock=lambda: 0.0)
    for n in range(10):
        log.log(logging.INFO, "junk frame %d dropped", n)
    log.log(logging.WARNING, "refused: too many connections from %s", "192.0.2.1")
    return log


def test_info_lines_no_handler_writes_do_not_silence_a_warning() -> None:
    shown = _Lines(logging.WARNING)
    _junk_then_a_warning(_transport(_parent(shown)))
    assert shown.lines == ["refused: too many connections from 192.0.2.1"]


def test_info_lines_the_last_resort_handler_drops_do_not_silence_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _junk_then_a_warning(_transport(_parent()))  # no handler: the last-resort one
    assert capsys.readouterr().err == "refused: too many connections from 192.0.2.1\n"


def test_info_lines_a_handler_writes_still_count() -> None:
    """A handler at INFO among them (a log file beside a console at WARNING): the INFO lines
    are written, so they count, and the warning is left out (counted)."""
    shown, written = _Lines(logging.WARNING), _Lines(logging.INFO)
    log = _junk_then_a_warning(_transport(_parent(shown, written)))
    assert len(written.lines) == 3
    assert shown.lines == []
    assert log.suppressed == 8
