"""Review 58s, refuted (attacks tried that found the code right).

- The 32 KiB least charge of a fragment (`MIN_CHARGE`, review 58i, reassembly 1) refuses no
  honest message: the largest, and ones whose last fragment is tiny, at every padding, in order
  and with every fragment arriving in reverse (the last one first), fit the channel's bound.
- Bytes a delegate of alice and bob left incomplete are given back to both when the timer
  expires them (`MemberBytes` forgets them): nothing is left counted against either.
- The kept lock files (`_KEPT_LOCKS`, a WeakSet) do not grow with the locks made and dropped.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from tests.support.channels import T, make_world, pump
from tests.test_channel_manager import Net, run, send_fragments, until
from tests.test_review43a_channels import open_as
from tests.test_review58i_channels import delegate_of
from troth.channel import ChannelSettings
from troth.channel.events import Received
from troth.channel.secure import MAX_PADDING
from troth.limits import MAX_APPLICATION_MESSAGE
from troth.node.channels import ChannelLimits
from troth.storage import peers
from troth.storage.peers import PeerLock, SoleHolder, Turns


@pytest.mark.parametrize("padding", [0, 255, 1000, MAX_PADDING - 1, MAX_PADDING])
def test_honest_messages_fit_the_least_charge_at_every_padding(padding: int) -> None:
    world = make_world()
    settings = ChannelSettings(padding=padding)
    sender, receiver = world.initiator(settings), world.responder(settings)
    pump(sender, receiver)
    for size in (MAX_APPLICATION_MESSAGE, MAX_APPLICATION_MESSAGE - 60_000, 70_000):
        for reverse in (False, True):
            sender.send(bytes(size))
            packets = sender.outgoing()
            got = [
                event
                for packet in (packets[::-1] if reverse else packets)
                for event in receiver.receive(packet, T + 2)
                if isinstance(event, Received)
            ]
            assert [len(event.payload) for event in got] == [size]
    assert receiver.reassembling == 0


def test_expired_bytes_go_back_to_every_member() -> None:
    async def test(net: Net) -> None:
        hub = await net.hub(limits=ChannelLimits(max_reassembly_per_peer=300_000))
        mallory = net.peer("10.58.21.1")
        end = await open_as(mallory, delegate_of(net, net.world.alice, net.world.bob))
        await send_fragments(mallory, end, 400_000, 2)
        tally = hub.manager._member_bytes
        alice, bob = net.world.alice.identifier.digest, net.world.bob.identifier.digest
        await until(lambda: tally.held(alice) > 0)
        assert tally.held(alice) == tally.held(bob) > 0
        net.clock.now = T + 1 + 61  # past the reassembly timeout
        assert hub.manager.expire_reassemblies() > 0
        assert (tally.held(alice), tally.held(bob), len(tally)) == (0, 0, 0)

    run(test)


def test_the_kept_lock_files_do_not_grow(tmp_path: Path) -> None:
    base = tmp_path
    gc.collect()
    before = len(peers._KEPT_LOCKS)
    for n in range(20):
        PeerLock(base / f"lock{n}").close()
        sender = SoleHolder(base / f"sender{n}")
        assert sender.take()
        sender.close()
        Turns(base / f"turns{n}", 1.0).close()
    del sender
    gc.collect()
    assert len(peers._KEPT_LOCKS) == before
