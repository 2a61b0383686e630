"""Review 64m: attacks on review 64b's answer to a service not served and on review 64h's
typed authority refusals that did not work, each a test that fails if the defence it names
breaks.

64b (a stranger must not tell the services a node serves from made-up names):
1. Flooding: a stranger sends the same request over and over to a served members-only method
   that is not inline and to made-up names: each costs exactly one decision (no more than a
   served method's, never the 16 of a made-up method of a served service), every answer is
   the same bytes, no one is `busy`, and its channel stays open, answering after the flood
   as before it.
2. Log flooding: a stranger's many requests to made-up names write no more log lines than
   the channels' lines a minute (each is a `no route` line of the rate-limited log, and the
   answer adds none).
3. A caveated delegate (its every credential carries a caveat) on a node whose services keep
   their built-in rules: echo, sink and a made-up name answer it the same bytes (the caveat
   denial), so it cannot list them either.
4. Other shapes: a request with further hops after the service address, and one with an
   unknown method, to a served members-only service and to a made-up one: the same bytes.
9. Members wrongly refused: a member of another authority the node also trusts (the hub
   enrolled with globex) is served echo and told `no-route` for a made-up name, as the hub's
   own authority's members are (the rule of `channels.unserved` names no authority).

64h (a typed refusal made from remote text):
5. Remote text crafted by an authority (an escape sequence, a newline that would forge a
   line, a detail of 100 000 characters) made an AuthorityError: one line with no control
   character once the call reads it (`result_of`), and `troth`'s failure report (text and
   --json) holds no raw control character either.
6. Look-alikes are not refusals: the prefix later in the text, a reason with more after it,
   a `denied` answer whose reasons say it, an error that is not remote: None.
7. The self-enrollment refusal over key rotation: the authority's identity rotated keeps its
   identifier, and enrolling it with its own ticket is still refused before anything is
   recorded.
8. No legitimate record dropped: another identity on the authority's own node enrolls with
   its ticket (a delegate-to-be of the authority is no authority), and its pending record of
   an interrupted enrollment is kept by `drop_unusable`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.support.nodes import HUB, MemNet, globex_over_tcp, route, run_memnet
from tests.support.waits import until
from tests.test_resilience_enrollment import prepare
from tests.test_review44a_callers import delegate_from
from tests.test_review64b_access import answers, request, strangers_channel
from troth.authority.client import authority_refusal
from troth.cli.output import Reporter
from troth.clock import SystemClock
from troth.credentials import Attributes
from troth.encoding import cbor
from troth.errors import (
    AuthorityError,
    AuthorityFailure,
    Busy,
    Denied,
    RemoteError,
    RoutingError,
)
from troth.node import open_node
from troth.node.access import AccessRequest, Decision, MembersOnly
from troth.node.authorities import drop_unusable, enroll_locally, parse_ticket
from troth.node.channel_limits import ChannelLimits
from troth.node.services.base import (
    FAILED,
    REQUEST,
    VERSION,
    Method,
    RequestContext,
    decode_response,
    error_response,
)
from troth.node.services.protocol import result_of
from troth.routing import Address, RoutedMessage, new_worker_address


class Ledger:
    """An operator's service, members only, its method not inline (run in a task)."""

    name = "ledger"
    oneway: Method | None = None

    def __init__(self) -> None:
        self.methods = {"read": Method(self.read, MembersOnly())}

    async def read(self, arguments: Any, context: RequestContext) -> Any:
        return arguments

    async def maintain(self, now: int) -> None:
        """Nothing to maintain."""

    def status(self) -> dict[str, Any]:
        return {}


class Counting:
    """The node's decision point, its decisions counted."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked = 0

    def decide(self, request: AccessRequest) -> Decision:
        self.asked += 1
        decision: Decision = self.inner.decide(request)
        return decision


def test_a_strangers_flood_costs_one_decision_each_and_answers_alike(tmp_path: Path) -> None:
    """Refuted 1."""

    async def test(net: MemNet) -> None:
        hub = net.hub
        assert hub is not None
        hub.add_service(Ledger())
        counting = Counting(hub.host.policy)
        hub.host.policy = counting
        mallory, end = await strangers_channel(net)
        ask = cbor.encode([REQUEST, VERSION, 7, "read", "x"])
        reply, got = new_worker_address("flood"), []

        async def take(message: RoutedMessage, _source: object) -> None:
            got.append(bytes(message.payload))

        mallory.router.register(reply, take)
        names = ("ledger", "ledgers", "payroll", "ledger", "x" * 40) * 12
        for name in names:
            await mallory.router.route(
                RoutedMessage((end.enc, Address("service", name)), (reply,), ask)
            )
        await until(lambda: len(got) == len(names))
        assert counting.asked == len(names)  # one decision each, served or not
        assert len(set(got)) == 1
        assert decode_response(got[0])[1][4]["error"] == "denied"
        assert hub.host.busy == 0
        after = await answers(mallory, end, [("ledger", ask), ("nothing", ask)])
        assert after == [got[0], got[0]]  # the channel is still open, answering alike

    run_memnet(test, tmp_path)


def test_a_strangers_requests_to_made_up_names_log_within_the_lines_a_minute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Refuted 2."""
    flood = 120

    async def test(net: MemNet) -> None:
        mallory, end = await strangers_channel(net)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="troth"):
            asks = [(f"made-up-{n}", request()) for n in range(flood)]
            reply, got = new_worker_address("logs"), []

            async def take(message: RoutedMessage, _source: object) -> None:
                got.append(message)

            mallory.router.register(reply, take)
            for name, payload in asks:
                to = Address("service", name)
                await mallory.router.route(RoutedMessage((end.enc, to), (reply,), payload))
            await until(lambda: len(got) == flood)
            hub_lines = [r for r in caplog.records if r.name.startswith("troth.node")]
        # the hub's channels' log (its `no route` lines) and the host's each keep their own
        # lines a minute; mallory's node logs nothing for answers it takes
        assert len(hub_lines) <= ChannelLimits().log_lines_per_minute + 2, [
            r.getMessage() for r in hub_lines
        ]

    run_memnet(test, tmp_path)


def test_a_caveated_delegate_cannot_tell_served_services_from_made_up_ones(
    tmp_path: Path,
) -> None:
    """Refuted 3."""

    async def test(net: MemNet) -> None:
        alice = await net.member("alice", **{"troth.relay": "alice"})
        await alice.worker.run(delegate_from, alice, "alice", "caveated", ("context.now > 0",))
        end = await alice.channel_as("caveated", route(HUB))
        names = ("echo", "sink", "trace", "policy", "payroll")
        got = await answers(alice, end, [(name, request()) for name in names])
        assert len(set(got)) == 1, got
        reasons = decode_response(got[0])[1][4]["reasons"]
        assert "carry caveats" in reasons[0]

    run_memnet(test, tmp_path)


def test_further_hops_and_unknown_methods_answer_alike(tmp_path: Path) -> None:
    """Refuted 4."""

    async def test(net: MemNet) -> None:
        mallory, end = await strangers_channel(net)
        reply = new_worker_address("hops")
        got: list[bytes] = []

        async def take(message: RoutedMessage, _source: object) -> None:
            got.append(bytes(message.payload))

        mallory.router.register(reply, take)
        beyond = (Address("service", "echo"), Address("worker", "w-1"))
        for name in ("echo", "payroll"):
            for payload in (request(), request("no-such-method")):
                onward = (end.enc, Address("service", name), *beyond)
                await mallory.router.route(RoutedMessage(onward, (reply,), payload))
        await until(lambda: len(got) == 4)
        assert got[0] == got[2], got
        assert got[1] == got[3], got
        assert {decode_response(g)[1][4]["error"] for g in got} == {"denied"}

    run_memnet(test, tmp_path)


def _remote(message: str) -> RemoteError:
    """The error a call raises for a `failed` answer carrying `message`."""
    with pytest.raises(RemoteError) as raised:
        result_of(decode_response(error_response(FAILED, message, request=1))[1])
    return raised.value


def test_crafted_remote_text_makes_a_one_line_refusal_the_cli_shows_safely(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Refuted 5."""
    crafted = "\x1b[2J\ntroth: enrolled agent with acme\x07" + "y" * 100_000
    text = f"AuthorityError: {AuthorityFailure.TICKET_UNKNOWN.value} ({crafted})"
    refusal = authority_refusal(_remote(text))
    assert refusal is not None
    assert refusal.reason is AuthorityFailure.TICKET_UNKNOWN
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in str(refusal))
    for as_json in (False, True):
        with pytest.raises(SystemExit):
            Reporter(as_json).fail(refusal)
        out, err = capsys.readouterr()
        shown = out if as_json else err
        assert "\x1b" not in shown
        assert "\x07" not in shown
        if as_json:
            assert json.loads(out)["reason"] == AuthorityFailure.TICKET_UNKNOWN.value
        else:
            assert shown.count("\n") == 1


def test_look_alike_texts_are_no_authority_refusals() -> None:
    """Refuted 6."""
    reason = AuthorityFailure.NOT_A_MEMBER.value
    for text in (
        f"x AuthorityError: {reason}",
        f"AuthorityError: {reason}, or so",
        f"AuthorityError: {reason} (unclosed",
        f"IdentityError: {reason}",
    ):
        assert authority_refusal(_remote(text)) is None, text
    assert authority_refusal(Denied((f"AuthorityError: {reason}",))) is None
    assert authority_refusal(RoutingError(f"AuthorityError: {reason}")) is None
    assert authority_refusal(Busy("busy: try again")) is None
    typed = authority_refusal(_remote(f"AuthorityError: {reason}"))
    assert typed is not None
    assert typed.reason is AuthorityFailure.NOT_A_MEMBER


def test_an_authority_rotated_is_still_refused_its_own_enrollment() -> None:
    """Refuted 7."""
    ticket = parse_ticket(prepare("node:acme").ticket)
    with open_node("acme") as acme:
        before = acme.identities.find("acme").identifier
        acme.identities.rotate("acme", now=SystemClock().now())
        assert acme.identities.find("acme").identifier == before
        with pytest.raises(AuthorityError) as refused:
            enroll_locally(acme, ticket, "acme", clock=SystemClock())
        assert refused.value.reason is AuthorityFailure.REQUEST_INVALID
        assert acme.wallet.pending_enrollments("acme") == []
        assert acme.authority().members() == []


def test_another_identity_on_the_authoritys_node_enrolls_and_keeps_its_record() -> None:
    """Refuted 8."""
    ticket = parse_ticket(prepare("node:acme").ticket)
    with open_node("acme") as acme:
        now = SystemClock().now()
        helper = acme.identities.create(now=now, name="helper").identifier
        authority = acme.authority().identifier
        acme.wallet.record_enrollment("helper", authority, str(ticket), ticket.address, now=now)
        assert drop_unusable(acme, "helper") == []
        assert len(acme.wallet.pending_enrollments("helper")) == 1
        done = enroll_locally(acme, ticket, "helper", clock=SystemClock())
        assert done.enrolled
        assert [m.identifier for m in acme.authority().members()] == [helper]


def test_a_member_of_another_authority_the_node_trusts_is_told_no_route(tmp_path: Path) -> None:
    """Refuted 9."""

    async def test(net: MemNet) -> None:
        _globex, authority, ticket = await globex_over_tcp(net)
        hub = net.hub
        assert hub is not None
        await hub.enroll(ticket, hub.name)  # the hub trusts globex too
        assert authority.identifier in hub.trust.routes
        carol = await net.node("carol")
        second = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"globex.team": "desk"}),
            address="/tcp/globex:4000",
            now=net.clock.now(),
        )
        await carol.enroll(str(second), "carol")
        hubs = net.authority.identifier
        end = await carol.channel_to(
            route(HUB), also_trust=frozenset({hubs}), expect=hubs, claimed=True
        )
        echo, made_up = await answers(carol, end, [("echo", request()), ("payroll", request())])
        assert decode_response(echo)[1][4] == "x"
        assert decode_response(made_up)[1][4]["error"] == "no-route"

    run_memnet(test, tmp_path)
