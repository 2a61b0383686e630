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

import collections
import logging

import pytest

from troth.transport.eviction import eviction_candidate
from troth.transport.frameless import Frameless
from troth.transport.liveness import Liveness
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


class _Frameless:
    """A stand-in accepted connection that sent nothing yet; counts the looks taken at it."""

    looks = 0

    def __init__(self, host: str) -> None:
        self._host = host
        self.network = host.rsplit(".", 1)[0] + ".0/24"
        self.frames_read = 0
        self.liveness = Liveness()

    @property
    def host(self) -> str:
        type(self).looks += 1
        return self._host

    @property
    def progress(self) -> int:
        type(self).looks += 1
        return 0


def test_newcomers_at_a_cap_of_frameless_connections_do_not_each_weigh_them_all() -> None:
    """Listener 2: review 60f kept the frameless connections apart (`TcpTransport._unproven`),
    so a newcomer at the cap is weighed against them alone; but when they are many (an attacker
    holding the cap's 256 places with connections that send nothing, 4 from each of 64
    addresses, each closed after `first_frame_timeout` and opened again), each newcomer still
    looks at every one of them twice (is it proven yet; which address holds the most): ~0.2 ms
    a newcomer at 1,024, as much as the scan review 60f, listener 1 removed. The transport's
    admission at the cap, played here with stand-ins for 200 newcomers, looks at a bounded
    number of connections for each, not all 256 (the transport hears of a connection's first
    progress, `TcpTransport.proved`, and keeps the frameless ones by address: `Frameless`)."""
    table = [_Frameless(f"10.0.{n // 4}.{n % 4}") for n in range(256)]
    unproven: Frameless[_Frameless] = Frameless()
    for connection in table:
        unproven.add(connection, connection._host)
    per_host = collections.Counter(c._host for c in table)
    per_network = collections.Counter(c.network for c in table)
    _Frameless.looks = 0
    for n in range(200):
        newcomer = _Frameless(f"10.1.{n}.1")
        victim = eviction_candidate(
            table,
            newcomer,
            per_host,
            per_network,
            strict=True,
            evict_idle_after=60.0,
            unproven=unproven,
        )
        assert isinstance(victim, _Frameless)
        for counts, key in ((per_host, victim._host), (per_network, victim.network)):
            counts[key] -= 1
            if not counts[key]:
                del counts[key]
        table.remove(victim)
        unproven.discard(victim)
        table.append(newcomer)
        unproven.add(newcomer, newcomer.host)
        per_host[newcomer._host] += 1
        per_network[newcomer.network] += 1
    assert _Frameless.looks <= 200 * 16, f"{_Frameless.looks} looks for 200 newcomers"
