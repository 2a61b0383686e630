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
   the issuer's own feed does not name (it names an earlier change): `feed_checkpoints` takes
   that word (as for chains) and the history verifies, but the VC is still refused, by the
   issuer's own feed (`check_current`: the presented history starts after the change it
   names, after a gap; `VerifiedFeed.binds` stands behind it);
4. the issuer's checkpointed history given with no feed at all: refused, `issuer identity
   invalid`, naming the unattested checkpoint.

Rekey (review 63h, rekey 1):

5. a rekey whose scrub fails after its commit (a reader keeps the WAL) reports success with
   `scrubbed` False, the old key's bytes still in node.db; the next open, with the reader still
   there, still owes the scrub (the mark is kept); the first open without a reader makes it, and
   no byte sealed under the old key is left in node.db or its log.

Access (review 63i, access 1):

6. a caller allowed one method of a service (`AnyAuthenticated`) asks for a made-up one: told
   "no method", not denied; a real method it is not allowed is still refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_json
from tests.support.feeds import superseded
from tests.support.parties import make_party
from tests.test_review47c_rekey import make_node_with_deleted_keys, old_bytes_left, scrub_owed
from tests.test_review55a_refuted import MESSAGE_1, Stranger, with_stranger
from tests.test_review63f_identity import CHECKPOINT, NOW, _long_lived, _vc
from tests.test_review63h_rekey import reader
from tests.test_review63l_access import _refusals
from troth.channel import RouteProblem, route_error
from troth.credentials import build_page, feed_genesis, next_head, write_page_sequence
from troth.credentials.revocation_held import feed_checkpoints
from troth.errors import CredentialError, CredentialFailure, Denied, IdentityFailure, RemoteError
from troth.identity import Checkpoint, verify_history
from troth.node.access import AnyAuthenticated
from troth.node.verify import Sources, select_feeds, verify_vc
from troth.routing import new_worker_address
from troth.vault import SoftwareVault


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


def _co_trusted_world(tmp_path: Path) -> tuple[Sources, bytes, bytes]:
    """The long-lived authority A of review 63f (its own feed names change CHECKPOINT), a
    co-trusted authority B whose fresh feed names A's change CHECKPOINT + 2, both anchors: the
    sources, A's history from CHECKPOINT + 2 (its checkpoint naming B), and A's VC."""
    world = _long_lived(tmp_path)
    full = world.full
    vault = SoftwareVault()
    other = make_party(vault, now=NOW - 100)
    later = CHECKPOINT + 2
    entry = superseded(
        0, full.identifier, other.identifier, later + 1, full.changes[later].change_hash, at=NOW
    ).encode()
    head = next_head(feed_genesis(other.identifier), entry)
    page = build_page(other.signer, [entry], start=0, head=head, latest=1, now=NOW - 10)
    other_file = tmp_path / "other.feed"
    other_file.write_bytes(b"".join(write_page_sequence([page])))
    anchors = frozenset({world.authority.identifier, other.identifier})
    sources = Sources(anchors, tmp_path, [str(world.feed_file), str(other_file)])
    checkpoint = Checkpoint(full.identifier.digest, other.identifier.digest, later)
    return sources, full.from_checkpoint(checkpoint).history, _vc(world)


def test_3_a_co_trusted_feeds_word_on_the_issuers_checkpoint_verifies_no_vc(
    tmp_path: Path,
) -> None:
    sources, history, vc = _co_trusted_world(tmp_path)
    feeds = select_feeds(
        feed_files=sources.feed_files, authority=None, anchors=sources.anchors, now=NOW
    )
    attested = feed_checkpoints(feeds, now=NOW, max_staleness=sources.max_feed_age)
    assert verify_history(history, now=NOW, checkpoints=attested).first_index == CHECKPOINT + 2
    with pytest.raises(CredentialError) as refused:
        verify_vc(vc, sources, now=NOW, issuer_history=history)
    assert refused.value.reason is CredentialFailure.SUPERSEDED  # A's own feed: after a gap
    assert f"present it from change {CHECKPOINT} or earlier" in str(refused.value)


def test_4_a_checkpointed_issuer_history_with_no_feed_is_refused(tmp_path: Path) -> None:
    world = _long_lived(tmp_path)
    sources = Sources(frozenset({world.authority.identifier}), tmp_path, [])
    with pytest.raises(CredentialError) as refused:
        verify_vc(_vc(world), sources, now=NOW, issuer_history=world.authority.identity.history)
    assert refused.value.reason is CredentialFailure.ISSUER_INVALID
    assert IdentityFailure.UNATTESTED_CHECKPOINT.value in str(refused.value)


def test_5_a_scrub_owed_by_a_successful_rekey_is_made_by_the_first_open_without_a_reader(
    troth_home: Path,
) -> None:
    path, blobs = make_node_with_deleted_keys(troth_home)
    with reader(path):
        assert run_json("vault", "rekey", "--node", "n")["scrubbed"] is False
        assert old_bytes_left(path, blobs)  # the premise: the old key's bytes are still there
        assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
        assert scrub_owed(path)  # that open had the node alone, not the log: still owed
        assert old_bytes_left(path, blobs)
    assert run_json("identity", "show", "agent", "--node", "n")["name"] == "agent"
    assert not scrub_owed(path)
    assert old_bytes_left(path, blobs) == []


def test_6_a_caller_allowed_one_method_is_told_no_method_and_still_refused_the_others() -> None:
    made_up, known = _refusals(("audix", "audit"), listed=AnyAuthenticated())
    assert isinstance(made_up, RemoteError)
    assert not isinstance(made_up, Denied)
    assert "has no method 'audix'" in str(made_up)
    assert isinstance(known, Denied), known
