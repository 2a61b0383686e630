"""Review 27a, TCP queue 1: the share of the queues one peer address may hold does not follow
a configured total (docs/protocols.md, "TCP transport": the queues' total "is shared out per
peer address (a quarter each)").

`max_queued_per_source` defaults to a constant, `limits.MAX_QUEUED_BYTES_PER_SOURCE` (16 MiB, a
quarter of the default total), not to a quarter of `max_queued_total`. A node whose operator
lowers the total (`TROTH_TCP_MAX_QUEUED_TOTAL`, a small machine) keeps a 16 MiB share per
address: at a total of 16 MiB or less one address's slow readers hold all of it again, and
every other connection whose write buffer fills has no queue, its senders waiting on the total
(review 26a, queue 2, back); between 16 and 64 MiB fewer than four addresses do.

Here the total is 512 KiB (per connection 256 KiB) and the share is left to its default. Was a
strict xfail until the share's default became a quarter of the total (at least
`max_queued_bytes`)."""

from __future__ import annotations

import pytest

from tests.test_review26a_queue_share import squat_then_send_elsewhere
from tests.test_transport_tcp_queue import run
from troth import limits
from troth.transport import TcpSettings, TcpTransport


@pytest.mark.usefixtures("loopback_sources")  # its clients stand for remote hosts
def test_a_lowered_total_is_still_shared_out_per_address() -> None:
    """Two connections from 127.0.0.1 read nothing; two senders relay 1 MB to each. Then a
    third sender relays 1 MB to a slow peer at 127.0.0.2: its frames past the buffers go to
    its own queue, none waits for the queues of 127.0.0.1 to drain."""
    settings = TcpSettings(
        write_buffer=65536,
        max_queued_bytes=256 * 1024,
        max_queued_total=512 * 1024,  # max_queued_per_source: its default
        stall_timeout=60.0,
        write_timeout=120.0,
        first_frame_timeout=120.0,  # the silent peers send nothing
    )

    async def test(transport: TcpTransport, host: str, port: int) -> None:
        _honest, streams = await squat_then_send_elsewhere(transport, host, port, lambda: None)
        assert not transport.space_waiters  # nothing waits for 127.0.0.1's queues
        assert transport.queued_from("127.0.0.1") <= settings.max_queued_total // 2
        for _reader, writer in streams:
            writer.close()

    run(test, settings)


def test_the_default_share_is_a_quarter_of_the_total() -> None:
    """16 MiB at the default total; a quarter of a total set lower, never less than one
    connection's queue; the share set explicitly is kept."""
    assert TcpSettings().queued_per_source == limits.MAX_QUEUED_BYTES_PER_SOURCE
    lowered = TcpSettings.from_environment({"TROTH_TCP_MAX_QUEUED_TOTAL": str(8 << 20)})
    assert lowered.queued_per_source == 2 << 20
    small = TcpSettings(max_queued_total=1 << 20)
    assert small.queued_per_source == small.max_queued_bytes == 1 << 20
    assert TcpSettings(max_queued_per_source=3 << 20).queued_per_source == 3 << 20
