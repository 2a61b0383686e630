"""Review 20's attacks: today's fixes (bundle replacement and re-signing after a rotation, whose
word counts on a peer, the canonical-disclosure check, a moved postgres secret):

1. an authority that rotates after its key was stolen — the documented recovery — re-signs
   whatever bundle its node holds under its new key (`resign_after_rotation`): the thief's
   permit-all bundle, pushed to the authority's node before the rotation, comes back in force
   one revision up, signed by the rotated authority and pushed to every subscriber;
2. a peer chooses its own judges: a member of acme and globex whose identity acme revokes
   stops showing its acme chain, and a node trusting both — which saw it as acme's member —
   judges it by globex's feed alone and serves it (`standing_feeds` counts only the chains
   the peer shows);
3. the collector's canonical-disclosure check (`is_canonical_value`) parses with `json.loads`,
   but exports are read back as I-JSON (`load_json`): a canonical value holding a
   noncharacter, or nested deeper than MAX_JSON_DEPTH, is admitted, and every export of the
   hub's log is then refused by `troth trace verify --file` (review 19's finding 1, still open
   by another door);
4. `PostgresEngine.location` leaves out `dbname`, where a lease's privileges are copied and its
   objects dropped: a secret re-stored under another dbname (its `databases` unchanged) keeps
   its open leases, whose revocation then never reaches the old database — the role outlives
   it (NOLOGIN, with its privileges there) and the lease stays REVOKING.

Each test asserts the secure behaviour and is marked xfail (strict) while main has the bug.
"""

# Held (tried, no test kept; "ran" = exercised here, "read" = from the code only):
# - read: bundles: a replayed older genuine bundle is still a rollback while the held one is in
#   force; once it is out of force any verified one may replace it (documented, docs/policy.md:
#   "sign the replacement above every revision you signed before the theft"); the stolen key
#   signs nothing a store takes after the feed supersedes it (verify_bundle checks the signer's
#   history and its chain's issuers against the current feed); `_newer` requires the feed of
#   the bundle's own authority; `replace` is a compare-and-set on the bytes judged out of force,
#   and a process holding a stale active bundle is refused ("another bundle was stored
#   meanwhile"); `get` never serves a bundle its feed puts out of force, `_local` may but the
#   puller verifies it again; pushes go out only on activation and the same bytes again are a
#   no-op, so two nodes cannot push one another in a loop.
# - read: trust scope: a chain whose root is not an anchor is dropped and appears in no
#   `credentials`, so it grants nothing (relay names, MCP, leases, forward pool, trace budgets
#   and the collector all read verified chains only); a broken chain of a trusted root still
#   refuses the channel; a stranger is judged by every feed.
# - read: trace pins: pins.json is written 0600 through the node's private-file writer, a book
#   that does not parse fails closed (nothing is sent); a pinned or configured identity is
#   checked on a reused channel too (`_still_open`); the first contact is trust-on-first-use
#   (documented).
# - read: feed budgets: a stranger is charged to its own class's pool (a member's needs a
#   credential from an anchor that re-verifies now); a `since` past the end is refused before
#   any charge; the shared tip page is re-signed whenever the feed grows or the authority
#   rotates (its version is read from the store, so a CLI revocation is seen).
# - read: `validate_token`: a retired key's token must be dated before the retirement and fit
#   an active token lease (sub, scope, iat/exp within it, the secret's audience now); a
#   backdated token from a stolen retired key is held to what that lease could carry.
# - read: `put_secret` during an issue in flight: the issuing path revokes what it made with
#   the spec it captured when `activate` finds the lease revoked.
# - read: postgres privilege copy: identifiers through `sql.Identifier`, privilege keywords and
#   object kinds from closed lists; a template that gains privileges or ownership after an issue
#   gives the lease nothing until a renewal re-reads (and then refuses) it; an ACL catalog not
#   read can only leave a lease with less; revoke ends sessions (cluster-wide) before REVOKE
#   and DROP OWNED, and a lock or statement timeout leaves the lease REVOKING for the sweep.
# - read (minor, not kept): the forward pool and the trace service's in-progress slots are
#   keyed by the *set* of member accounts, so an identity holding chains of two members gets a
#   third share (their byte budgets use `take_all`, which charges each member).
# - read (PostgreSQL 16+, not runnable here: 15 is installed): `location` also leaves out the
#   admin `user`; a CREATEROLE admin there may drop only the roles it has ADMIN OPTION on, so a
#   secret re-stored under another admin keeps leases it cannot revoke.

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.gates import POLICIES, TOOLS
from tests.support.leases import LeaseWorld
from tests.support.nodes import MemNet, route, run_memnet
from tests.support.postgres import ADMIN_PASSWORD
from tests.support.traces import hub_log_exports_verified
from tests.test_api import Story, story  # noqa: F401 - `story` is a fixture
from tests.test_attacks_review19 import local_authority
from tests.test_secrets_postgres import (  # noqa: F401 - `orders` and `world` are fixtures
    SECRET,
    OrdersDb,
    now,
    orders,
    world,
)
from tests.test_secrets_postgres import setup as pg_setup
from tests.test_trace_node import send_to_hub
from troth import limits
from troth.clock import FixedClock
from troth.credentials import Attributes
from troth.errors import ChannelError, ChannelFailure
from troth.gates import create_bundle
from troth.node import open_node
from troth.node.services import call, service_address
from troth.node.services.policy import install_bundle, stored_bundles
from troth.storage.base import HeldCredential
from troth.trace import Kind, RecordContent, ToolCall, signing
from troth.trace.signing import sign_record
from troth.trace.submit import Receipts, Submission, SubmittedRecord

ECHO = service_address("echo")
ALL = '@id("all") permit(principal, action in Action::"invoke", resource);'


# -- 1. a rotation re-signs the bundle the stolen key pushed ----------------------------------


def test_an_authoritys_rotation_never_re_signs_the_bundle_its_stolen_key_pushed(
    story: Story,  # noqa: F811 - the fixture imported above
    clock: FixedClock,
    troth_home: Path,
) -> None:
    """Acme's node holds acme's bundle (revision 5). A thief with a backup of acme's key signs
    a permit-all bundle, revision 6, and pushes it to acme's node (the policy service's `push`
    is `NodePolicies.accept`, as `install_bundle` here): accepted, the history is current.
    Acme notices and rotates — the documented recovery from a stolen authority key, which puts
    everything the old history signed out of force. But `identity rotate` (CLI and API) then
    calls `resign_after_rotation`, which signs the bundle the node holds *now* — the thief's —
    again under the new key, revision 7, installs it and pushes it to every subscriber: the
    permit-all policy is in force everywhere, signed by the rotated authority (and a bundle
    that had expired would be revived with a fresh lifetime the same way). The secure
    behaviour: a rotation never puts back in force a bundle the authority did not choose."""
    stored = story.hub._stored
    acme = story.acme.identifier
    signer = stored.identities.signer(str(acme), now=clock.now())  # and the thief's copy of it

    def bundle(policies: str, revision: int) -> bytes:
        return create_bundle(
            signer,
            authority=acme,
            policies=policies,
            schema="",
            tools=TOOLS,
            revision=revision,
            now=clock.now(),
            ttl=3600,
        )

    install_bundle(troth_home, "acme", bundle(POLICIES, 5), clock=clock)
    clock.advance(10)
    install_bundle(troth_home, "acme", bundle(ALL, 6), clock=clock)  # the thief's push
    clock.advance(10)
    story.hub.identities.rotate(str(acme))  # the owner's recovery
    in_force = [row for row in stored_bundles(troth_home, "acme", clock=clock) if row["in_force"]]
    assert [row["policies"] for row in in_force if row["policies"] == ["all"]] == []


# -- 2. a peer hides the chain of the authority that revoked it -------------------------------


def test_a_member_cannot_hide_the_chain_of_the_authority_that_revoked_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Desk trusts acme and globex. Agent's identity is a member of both; it talks to desk
    showing both chains, so desk has seen it as acme's member. Acme revokes agent's identity
    (its key was stolen, say; globex is not told): a channel showing the acme chain is refused
    — acme's own word on its member (`standing_feeds`). The thief (agent's keys and wallet)
    simply stops showing the acme chain: desk judges the identity by the feed of globex, the
    only root it shows, and serves it. The same holds for a supersession (a stolen backup of
    a rotated member: acme's feed supersedes the old history, globex has not heard of the
    rotation yet). The rule (docs/formats.md, "Whose word counts on an identity") lets a peer
    with chains of two authorities choose which of them judges it."""

    async def test(net: MemNet) -> None:
        globex, ticket = local_authority(net.home, "globex", net.clock.now())
        desk = await net.node("desk", listen=("desk", 4000))
        await desk.enroll(net.ticket(), "desk")
        await desk.worker.run(lambda: desk.node.identities.create(now=net.clock.now(), name="g"))
        await desk.enroll(ticket, "g")  # desk trusts acme and globex
        agent = await net.member("agent")
        with open_node("globex", home=net.home) as node:
            authority = node.authority()
            second = authority.create_ticket(
                creator=authority.identifier,
                attributes=Attributes({"globex.team": "desk"}),
                address="node:globex",
                now=net.clock.now(),
            )
        await agent.enroll(str(second), "agent")  # the same identity, now globex's too
        desk_route = route("/tcp/desk:4000")
        end = await agent.channel_as("agent", desk_route)
        assert end.peer is not None
        assert await call(agent.router, (end.enc, ECHO), "echo", "hi") == "hi"
        agent_id = net.identifier(agent)
        seen = {  # desk saw agent as a member of both
            credential.authority
            for desk_end in desk.channels.ends.values()
            if desk_end.peer is not None and desk_end.peer.identifier == agent_id
            for credential in desk_end.peer.credentials
        }
        assert seen == {net.authority.identifier, globex}
        await end.close()

        acme = net.authority.identifier
        net.authority.revoke_identity(agent_id, now=net.clock.now())
        await desk.refresh_feeds()
        with pytest.raises(ChannelError) as raised:  # showing its acme chain: refused
            both = await agent.channel_as("agent", desk_route)
            await call(agent.router, (both.enc, ECHO), "echo", "both")
        assert raised.value.reason is ChannelFailure.REVOKED

        wallet = agent.node.wallet
        presentable = wallet.presentable

        def hiding(ref: str, *, now: int) -> list[HeldCredential]:
            return [h for h in presentable(ref, now=now) if h.authority != acme.digest]

        monkeypatch.setattr(wallet, "presentable", hiding)  # the thief's own node
        with pytest.raises(ChannelError) as raised:
            hidden = await agent.channel_as("agent", desk_route)
            await call(agent.router, (hidden.enc, ECHO), "echo", "hidden")
        assert raised.value.reason is ChannelFailure.REVOKED

    run_memnet(test, tmp_path / "home")


# -- 3. a canonical disclosure that exports cannot read back ----------------------------------


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    ["\ufdd0", _deep(limits.MAX_JSON_DEPTH - 2)],
    ids=["noncharacter", "deep"],
)
def test_a_disclosure_the_collector_admits_never_breaks_the_hubs_exports(
    tmp_path: Path, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member signs a record with its own unmodified code; the tool's argument is the string
    U+FDD0 (a noncharacter: valid UTF-8, canonical RFC 8785), or a list nested a little under
    MAX_JSON_DEPTH. The collector's new check (`is_canonical_value`: `json.loads`, then
    re-canonicalise) passes and the record is appended. An export line carries the value inside
    the bundle's `disclosures`, and `verify_bundle` reads each line with `load_json` (I-JSON:
    no noncharacter, at most MAX_JSON_DEPTH levels): the line is refused, and with it every
    export of the hub's log — what review 19's finding 1 fixed for non-canonical bytes. Any
    agent whose tool arguments carry such a value (an honest one too) does it."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        agent = await net.member("agent-a")
        at = net.clock.now()
        signer = await agent.worker.run(lambda: agent.node.identities.signer("agent-a", now=at))
        content = RecordContent(
            Kind.TOOL_INVOCATION, tool=ToolCall("refund"), values={"args": {"note": value}}
        )
        with pytest.raises(ValueError, match="not a value an export can carry"):
            sign_record(signer, content, seq=0, prev=None, time=at)  # troth's own code refuses
        with monkeypatch.context() as hostile:  # a member's own signing code does not
            hostile.setattr(signing, "is_canonical_value", lambda value: True)
            verified = sign_record(signer, content, seq=0, prev=None, time=at)
        submitted = SubmittedRecord(verified.envelope, verified.disclosures)
        batch = Submission(signer.identity.history, (signer.attestation,), (), (submitted,))
        answer = await send_to_hub(agent, hub)("submit", batch.to_cbor())
        (result,) = Receipts.from_cbor(answer, expected=1).results
        assert not result.delivered  # refused by the collector: nothing its exports cannot read

        assert await hub.worker.run(hub_log_exports_verified, hub)

    run_memnet(test, tmp_path / "home")


# -- 4. a postgres secret moved to another dbname ---------------------------------------------


def test_a_postgres_secret_moved_to_another_dbname_revokes_its_leases_first(
    tmp_path: Path,
    world: LeaseWorld,  # noqa: F811 - the fixture imported above
    orders: OrdersDb,  # noqa: F811 - the fixture imported above
) -> None:
    """The secret's dbname is the orders database and `databases` lists the cluster's main one
    (docs/secrets.md: "databases (where privileges are copied and DROP OWNED runs, with
    dbname)"): a lease's role gets SELECT on `orders` there. The operator re-stores the secret
    with dbname = the main database, `databases` unchanged. `location()` is (host, port,
    databases): the same, so `put_secret` keeps the open lease (review 18's finding 4 fix
    revokes first only when the location changes). Its revocation now runs under the new
    configuration: REVOKE and DROP OWNED in the main database only, so DROP ROLE fails on the
    privileges left in the orders database — the lease stays REVOKING on every sweep and the
    role keeps its rights (and would keep whatever it owned there, a SECURITY DEFINER function
    included)."""
    main = orders.server.dbname
    broker = pg_setup(tmp_path, world, orders, databases=[main])
    agent = world.credential_a()
    issued = broker.issue(agent, SECRET, scope=["orders:read"], now=now())
    role = issued.lease.engine_ref
    assert role in orders.roles("tl_")
    moved = orders.config(dbname=main, databases=[main])
    broker.put_secret(SECRET, "postgres", moved, ADMIN_PASSWORD.encode(), now=now())
    broker.revoke(agent, issued.lease_id, now=now())
    broker.sweep(now() + 1)
    assert role not in orders.roles("tl_")
    broker.close()
