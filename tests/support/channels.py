"""Two channel parties and an authority, and helpers to run both ends of a secure channel in
memory (tests/test_channel_*.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tests.support.parties import (
    ChannelParty,
    Party,
    make_channel_party,
    make_party,
    verified_feed,
)
from troth.channel import (
    ChannelSettings,
    ChannelTrust,
    Closed,
    Dropped,
    DropReason,
    Event,
    PeerPolicy,
    RequireAttributes,
    SecureChannel,
    split_packet,
)
from troth.credentials import (
    Attributes,
    ChainVerifier,
    CredentialChain,
    TrustPolicy,
    VerifiedFeed,
    issue_credential,
)
from troth.routing import Address, Route
from troth.vault import SoftwareVault

T = 1_780_000_000
MEMBER = Attributes({"agents.team": "support"})


@dataclass
class World:
    """An authority, its feed, and two parties (alice initiates, bob responds)."""

    vault: SoftwareVault
    authority: Party
    alice: ChannelParty
    bob: ChannelParty
    feed: VerifiedFeed

    def credential(
        self, who: ChannelParty, ttl: int = 3600, attributes: Attributes = MEMBER
    ) -> bytes:
        signed = issue_credential(
            self.authority.signer,
            subject=who.identifier,
            attributes=attributes,
            now=T,
            ttl=ttl,
            depth=1,
        )
        return CredentialChain((signed,), (self.authority.identity.history,)).encode()

    def trust(self, policy: PeerPolicy | None = None) -> ChannelTrust:
        verifier = ChainVerifier(
            TrustPolicy(frozenset({self.authority.identifier}), max_feed_staleness=10**6)
        )
        return ChannelTrust(
            policy=policy or RequireAttributes(MEMBER),
            verifier=verifier,
            feeds=lambda: {self.authority.identifier: self.feed},
        )

    def initiator(
        self, settings: ChannelSettings | None = None, trust: ChannelTrust | None = None
    ) -> SecureChannel:
        me = self.alice.me((self.credential(self.alice),))
        return SecureChannel.initiate(me=me, trust=trust or self.trust(), settings=settings)

    def responder(
        self, settings: ChannelSettings | None = None, trust: ChannelTrust | None = None
    ) -> SecureChannel:
        me = self.bob.me((self.credential(self.bob),))
        return SecureChannel(initiator=False, me=me, trust=trust or self.trust(), settings=settings)


def make_world() -> World:
    vault = SoftwareVault()
    authority = make_party(vault, now=T)
    feed = verified_feed(authority, now=T)
    return World(
        vault, authority, make_channel_party(vault, now=T), make_channel_party(vault, now=T), feed
    )


def pump(a: SecureChannel, b: SecureChannel, now: int = T + 1) -> tuple[list[Event], list[Event]]:
    """Deliver packets both ways until quiet; return the events each side saw."""
    seen_a: list[Event] = []
    seen_b: list[Event] = []
    for _ in range(10):
        to_b, to_a = a.outgoing(), b.outgoing()
        if not to_a and not to_b:
            break
        for packet in to_b:
            seen_b += b.receive(packet, now)
        for packet in to_a:
            seen_a += a.receive(packet, now)
    return seen_a, seen_b


def closed(events: list[Event]) -> Closed:
    """The first Closed event (the test fails when there is none)."""
    found = [e for e in events if isinstance(e, Closed)]
    assert found, events
    return found[0]


def dropped(events: list[Event]) -> list[DropReason]:
    """The reasons of the Dropped events."""
    return [e.reason for e in events if isinstance(e, Dropped)]


def channel_reply(name: str) -> Address:
    """A reply address named as a node names its channel end's (`/worker/chan-<16 hex>.dec`,
    the hex from `name`): a message 1 naming it over a connection is the node at the other end
    itself, which may use its source's whole limits; one naming anything else is a party behind
    that node, held to less (`channel_sources.forwarded_room`; review 72p, ends2 1; review 72r,
    room 1)."""
    return Address("worker", f"chan-{hashlib.sha256(name.encode()).hexdigest()[:16]}.dec")


def packet(*frames: bytes | memoryview) -> bytes:
    """A packet of these frames (each length-prefixed)."""
    return b"".join(len(f).to_bytes(2, "big") + bytes(f) for f in frames)


def frames_of(packets: list[bytes | bytearray]) -> list[memoryview]:
    """Every frame of these packets, in order."""
    return [f for p in packets for f in split_packet(p)]


class UnverifiedSource:
    """A source that is no verified caller (a connection, not a channel end) and may reach
    every address: what the decision point must refuse before it tells anything (reviews 63i,
    64b)."""

    name = "connection"

    def allows(self, address: Address) -> bool:
        return True

    def allow(self, address: Address) -> None:
        pass

    def hold(self, address: Address) -> None:
        pass

    def forget(self, address: Address) -> None:
        pass

    def cut_from(self, address: Address) -> bool:
        return False

    def origin(self, return_route: Route) -> str:
        return "10.0.0.9"


class Allowing:
    """A source that may reach the given addresses (and those it is allowed or held)."""

    name = "test source"

    def __init__(self, *allowed: Address) -> None:
        self.allowed = set(allowed)

    def allows(self, address: Address) -> bool:
        return address in self.allowed

    def allow(self, address: Address) -> None:
        self.allowed.add(address)

    def hold(self, address: Address) -> None:
        self.allowed.add(address)

    def forget(self, address: Address) -> None:
        self.allowed.discard(address)

    def cut_from(self, address: Address) -> bool:
        return False

    def origin(self, return_route: Route) -> str:
        return self.name
