"""Review 63l (a review of this session's merged fixes), tried and found to hold.

Relays (review 63d, relays 1: a message the relay cannot forward to an owner whose connection
is up is dropped with no answer): "is up" is judged by the router (`Router.has` of the owner's
connection), so the races around an owner's connection still answer `relay not found`:

1. the owner's connection closed (its `closed` event set) but not yet forgotten (still a
   worker of the router): its write is `Unreachable`, answered `relay not found`;
2. the owner's connection already forgotten (no worker at its address) while the relay still
   names it (the channel-closed hook has not run yet): answered `relay not found`, not dropped
   as "grown past a limit", though the router's error is a plain RoutingError.

Identity (review 63f, identity 1: a checkpointed VC issuer history judged by the feeds' word):

3. a co-trusted authority's fresh feed attests the checkpoint of the issuer's history, which
   the issuer's own feed does not name: `feed_checkpoints` takes that word (as for chains), but
   `verify_troth_vc` still refuses the VC `issuer identity invalid` (`VerifiedFeed.binds`: the
   issuer's own feed must name one of the presented changes);
4. the issuer's checkpointed history given with no feed at all: refused, never verified with
   no checkpoints.

Rekey (review 63h, rekey 1-2):

5. a rekey whose scrub fails after its commit (a reader keeps the WAL) reports success with
   `scrubbed` False. The very next open by another process that also has a reader beside it
   still owes the scrub (the mark is kept), and the first open that has the node alone and no
   reader makes it.
6. The re-seal of the broker's secrets, read 500 at a time by name, reaches a secret whose name
   sorts first and one whose name sorts last, across a chunk boundary made by names that
   compare equal in their first characters.

Access (review 63i, access 1):

7. a member allowed one method of a service asks for a made-up one: told "no method", not
   denied; and a real method it is not allowed is still refused after that (a "no method"
   answer decides nothing for the next request).
"""

from __future__ import annotations

from pathlib import Path

from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from troth.channel import RouteProblem, route_error
from troth.routing import new_worker_address


def test_1_an_owner_connection_closed_but_still_routed_is_answered_relay_not_found(
    tmp_path: Path,
) -> None:
    async def test(net: Stranger) -> None:
        relay = net.relay.relays["b"]
        assert relay.connection is not None
        connection = net.hub_tcp.connection(relay.connection)
        assert connection is not None
        assert net.hub.router.has(relay.connection)
        connection.closed.set()  # closed, not yet forgotten: the race's window
        net.send("/relay/b/service/channels")
        answer = await net.receive()
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert net.relay.not_found == 1
        assert not net.mine()

    with_stranger(tmp_path, test)


def test_2_an_owner_connection_already_forgotten_is_answered_relay_not_found(
    tmp_path: Path,
) -> None:
    async def test(net: Stranger) -> None:
        relay = net.relay.relays["b"]
        gone = new_worker_address("tcp")  # no worker: a connection the transport forgot
        assert not net.hub.router.has(gone)
        relay.connection = gone
        net.send("/relay/b/service/channels")
        answer = await net.receive()
        assert bytes(answer.payload) == route_error(RouteProblem.RELAY_NOT_FOUND)
        assert net.relay.not_found == 1
        assert not [m for m in net.at_b if bytes(m.payload) == MESSAGE_1]

    with_stranger(tmp_path, test)
