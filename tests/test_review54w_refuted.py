"""Review 54w: attacks on the code merged by reviews 54n (API argument checks, CheckedClock),
54q (the allow-list lease policy and caveats, delegate()'s cycle check) and 54r/54s (the
channel cap split per authority) that the code refused: kept as passing tests."""

from __future__ import annotations

import pathlib
import re

import pytest

import troth
from troth._api.arguments import CheckedClock, check_clock
from troth.clock import FixedClock
from troth.node.channel_cap import OpenChannels
from troth.node.shares import LOCAL

NOW = 1_800_000_000
A, B, C = b"A" * 32, b"B" * 32, b"C" * 32


class _LyingInt(int):
    """An int whose comparisons lie (every `<`/`<=` true, every `>`/`>=` false)."""

    def __lt__(self, other: object) -> bool:
        return True

    def __le__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return False


class _Clock:
    def __init__(self, value: object) -> None:
        self.value = value

    def now(self) -> object:
        return self.value


def test_a_fixed_clock_is_wrapped_once_and_its_advances_are_read() -> None:
    """CheckedClock neither double-wraps (Node.open hands Node its checked clock) nor stops a
    test's FixedClock advancing: it reads the caller's clock at each call."""
    fixed = FixedClock(NOW)
    checked = check_clock("Node", "clock", fixed)
    assert isinstance(checked, CheckedClock)
    assert check_clock("Node", "clock", checked) is checked
    fixed.advance(90)
    assert checked.now() == NOW + 90


def test_node_open_reads_the_callers_fixed_clock_as_it_advances(tmp_path: pathlib.Path) -> None:
    fixed = FixedClock(NOW)
    with troth.Node.open("n", clock=fixed) as node:
        first = node.create_authority()
        fixed.advance(3600)
        ticket = first.ticket({"orders.access": "read"})
        assert ticket  # issued at the advanced time, no ArgumentError
        clock = node._clock
        assert isinstance(clock, CheckedClock)
        assert clock._clock is fixed
        assert clock.now() == NOW + 3600


@pytest.mark.parametrize(
    "value", [True, False, _LyingInt(NOW), float(NOW), str(NOW), None], ids=repr
)
def test_a_clock_reading_anything_but_an_int_is_an_argument_error(value: object) -> None:
    """A bool, an int subclass (its comparisons may lie to the window checks), a float, text:
    refused where the clock is read, never passed beneath."""
    checked = check_clock("Verifier", "clock", _Clock(value))
    assert checked is not None
    with pytest.raises(troth.ArgumentError):
        checked.now()


@pytest.mark.parametrize("value", [True, 1.0, "x", object()], ids=["True", "1.0", "x", "object"])
def test_fixed_clock_refuses_what_is_not_whole_seconds(value: object) -> None:
    with pytest.raises(troth.ArgumentError):
        FixedClock(value)  # type: ignore[arg-type]


def test_unevaluated_caveats_is_set_in_src_only_where_the_gate_evaluated_them() -> None:
    """No node, CLI or API path builds an AllowListPolicy that skips caveats: the only
    `unevaluated_caveats=True` in src is the demo's, whose leases are taken for calls the gate
    allowed with the caveat evaluated (the node's broker uses GatesLeasePolicy)."""
    src = pathlib.Path(__file__).resolve().parent.parent / "src" / "troth"
    found = sorted(
        str(path.relative_to(src))
        for path in src.rglob("*.py")
        if re.search(r"AllowListPolicy\([^)]*unevaluated_caveats\s*=\s*True", path.read_text())
    )
    assert found == ["demo/chapter6_traces.py"]


def test_delegate_to_another_identity_of_the_same_name_is_not_a_cycle(clock: FixedClock) -> None:
    """delegate()'s cycle check compares identifiers: a different identity that shares a
    name with one in the chain (here the delegator's own) is delegated to."""
    with (
        troth.Node.open("hub", clock=clock) as hub,
        troth.Node.open("agents", clock=clock) as agents,
        troth.Node.open("other", clock=clock) as other,
    ):
        acme = hub.create_authority()
        support = agents.identities.create("support")
        agents.enroll(acme.ticket({"orders.access": ["read", "write"]}), identity=support)
        namesake = other.identities.create("support")
        assert namesake.identifier != support.identifier
        chain = agents.delegate(
            support, to=namesake, attributes={"orders.access": "read"}, ttl=600, purpose="p"
        )
        assert chain is not None


def _member(cap: OpenChannels[str], end: str, *authorities: bytes) -> None:
    cap.add(end, stranger=False, source=end, network=end, authorities=frozenset(authorities))


def test_an_untrusted_authoritys_channels_still_give_way() -> None:
    """Channels 2: an authority untrusted while its members' channels are open: its count stays
    with the channels (no drift: given back as they close), and, over the smaller share of the
    authorities trusted now, its channels give way; the cap never refuses everyone."""
    trusted = [3]
    cap: OpenChannels[str] = OpenChannels(10, lambda: trusted[0])  # shares of 10 // 5 = 2
    for i in range(5):
        _member(cap, f"c{i}", C)
    for i in range(5):
        _member(cap, f"l{i}", LOCAL)
    trusted[0] = 2  # C no longer trusted: shares of 10 // 4 = 2, C holds 5
    place = cap.place(stranger=False, source="a", network="a", authorities=frozenset({A}))
    assert place.admitted
    assert place.victim == "c0"
    assert cap.admits(stranger=False, authorities=frozenset({A}))
    for i in range(5):
        cap.discard(f"c{i}")
    assert cap._shares.held(C) == 0
    assert len(cap) == 5


def test_local_callers_and_members_within_share_never_give_way() -> None:
    """Eviction never closes a local caller's channel (nor one of the node at the other end of
    its own connection, counted as LOCAL), even when LOCAL holds far past its share; the
    channels this node dials are never added to the cap at all."""
    cap: OpenChannels[str] = OpenChannels(8, lambda: 2)  # shares of 8 // 4 = 2
    for i in range(7):
        _member(cap, f"l{i}", LOCAL)
    _member(cap, "a0", A)
    for authorities in ({A}, {B}, {A, B}):
        place = cap.place(
            stranger=False, source="x", network="x", authorities=frozenset(authorities)
        )
        assert not place.admitted or place.victim is not None
        assert place.victim is None or not place.victim.startswith("l")
        assert cap.admits(stranger=False, authorities=frozenset(authorities)) == place.admitted


def test_a_member_of_two_authorities_is_one_place_counted_against_each() -> None:
    """A member of A and B holds one place (the cap's length) while counting against both
    shares: it cannot take twice the places, and it gives way for either's excess."""
    cap: OpenChannels[str] = OpenChannels(8, lambda: 2)
    for i in range(3):
        _member(cap, f"ab{i}", A, B)
    assert len(cap) == 3
    assert (cap._shares.held(A), cap._shares.held(B), cap._shares.places) == (3, 3, 3)
    for i in range(5):
        _member(cap, f"l{i}", LOCAL)
    place = cap.place(stranger=False, source="c", network="c", authorities=frozenset({C}))
    # C within its share (the shares split by the count trusted): A's and B's member gives way
    assert place == type(place)(True, "ab0")
