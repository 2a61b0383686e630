"""Review 72w (area: split): attacks on 72m's frames queued apart and the lead's per-thread fork
holds that did not work, kept as guards."""

from __future__ import annotations

import threading

from tests.test_review72w_split import _HEAD, _held_here, _Session
from troth.routing import RoutedMessage
from troth.transport import frame
from troth.transport.framing import FrameReader
from troth.transport.tcp_connection import SPLIT_FROM, _queued_frame
from troth.vault.pkcs11_fork import hold_sessions, release_held


def test_a_relayed_payload_is_a_view_of_its_own_copy_not_of_the_read_buffer() -> None:
    """72w refuted: a payload queued apart by a relay views the frame's own bytes (the reader's
    one copy), not the read buffer, so a reader reusing its buffer (for this connection's
    next frames) changes nothing queued; tried: two frames through one reader, the first's
    payload checked after the second was read."""
    reader = FrameReader()
    first = RoutedMessage((), (), b"a" * SPLIT_FROM).encode()
    (body,) = reader.feed(frame(first), 0.0)
    payload = RoutedMessage.decode(body).payload
    reader.feed(frame(RoutedMessage((), (), b"b" * SPLIT_FROM).encode()), 0.0)
    assert type(body) is bytes
    assert isinstance(payload, memoryview)
    assert payload.obj is body
    assert bytes(payload) == b"a" * SPLIT_FROM


def test_views_of_one_object_are_each_charged_the_whole_object() -> None:
    """72w refuted: the messages of one batch (views of one decrypted packet) queued apart to
    slow readers are each charged the whole packet, so one outliving the others is never
    held uncharged; tried: two views of one object, each charge checked."""
    packet = bytes(3 * SPLIT_FROM)
    for view in (memoryview(packet)[:SPLIT_FROM], memoryview(packet)[2 * SPLIT_FROM :]):
        queued, charge = _queued_frame(_HEAD, view)
        assert isinstance(queued, tuple)
        assert charge > len(packet)


def test_a_fork_from_a_thread_holding_a_session_lock_leaves_it_held() -> None:
    """72w refuted: a thread that holds a session's lock (an operation in flight: review 68d)
    and forks takes it again and, after the fork, still holds it once; tried with a thread's
    own RLock taken before `hold_sessions`, then forking again (a child's fork)."""
    table, session = threading.RLock(), _Session()
    with session.lock:
        for _ in range(2):  # the fork, then the child's own
            hold_sessions({"token": session}, table)  # type: ignore[dict-item]
            release_held()
            assert not _held_here(table)
        assert _held_here(session.lock)
    assert not _held_here(session.lock)
