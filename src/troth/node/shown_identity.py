"""The identity a running node shows on its channels, and the trust it admits peers with:
its channel identity (history, channel key, the credentials no feed it holds refuses; cached
IDENTITY_CACHE s), a local identity's for a channel opened as it (`channel_as`), and the
channel trust of its access policy. Part of `NodeRuntime` (troth.node.runtime).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from dataclasses import dataclass

from troth.channel import ChannelIdentity, ChannelTrust
from troth.channel.payloads import fitting_chains
from troth.clock import Clock
from troth.credentials import CredentialBody, CredentialChain
from troth.credentials.wallet import revokes_a_link, supersedes_an_issuer
from troth.errors import DecodeError, KeyNotFound
from troth.identity import Identifier
from troth.limits import IDENTITY_CACHE
from troth.node.access import ChannelAdmission, RulesPolicy
from troth.node.channel_ends import ChannelEnd
from troth.node.channels import ChannelManager
from troth.node.key_renewal import replace_from
from troth.node.node import Node
from troth.node.services.node_policies import unrevoked
from troth.node.trust import FEED_STALENESS, NodeTrust
from troth.node.worker import StoreWorker
from troth.routing import Route
from troth.storage import HeldCredential
from troth.vault import KeyPurpose
from troth.vault.ephemeral import VaultDhKey

__all__ = ["IDENTITY_CACHE", "ShownIdentity"]


@dataclass
class _Cached:
    identity: ChannelIdentity
    until: int
    """Reused until then (IDENTITY_CACHE s, at most when it stops being valid)."""
    shown_until: int
    """Shown past `until` while its renewal runs until then: when it stops being valid, or
    earlier when its channel key's channels start being replaced (`key_renewal.replace_from`:
    a channel opened showing it then was closed by the next round, review 69k's relay move)."""


class ShownIdentity:
    """The node's channel identity and channel trust (a part of `NodeRuntime`)."""

    node: Node
    name: str
    clock: Clock
    trust: NodeTrust
    policy: RulesPolicy
    worker: StoreWorker
    channels: ChannelManager
    _me_cache: _Cached | None
    _me_lock: threading.Lock
    """Held while the identity is read or renewed: one renewal at a time, whichever thread."""
    _renewing: asyncio.Future[ChannelIdentity] | None

    def _channel_trust(
        self, *, also: frozenset[Identifier] = frozenset(), expect: Identifier | None = None
    ) -> ChannelTrust:
        policy = dataclasses.replace(self.policy, also=also) if also else self.policy
        return self.trust.channel_trust(ChannelAdmission(policy, self.clock.now, expect=expect))

    def _me(self) -> ChannelIdentity:
        """This node's channel identity (cached IDENTITY_CACHE s; renewed off the loop by the
        maintenance, so the handshake path rarely reads the store). On the event loop, a cached
        identity past its time but still valid is shown while its renewal runs on the storage
        thread (started here if none runs): the loop never generates nor signs a channel key
        (an HSM's slow sign held it), and a handshake during a renewal started no second one,
        whose key was left orphaned in the vault (review 69j, gaps 1; the replaced channel key
        is kept a grace for the handshakes that showed it, review 69t, chkeys 1). Not once
        its channels are due for replacement (a channel opened showing it was closed at the
        next round). Only with none such (a rotation retired its key) does the loop read it
        itself, after any renewal running (`_me_lock`)."""
        now = self.clock.now()
        cached = self._me_cache
        if cached is not None and now < cached.shown_until and self._still_held(cached.identity):
            if now < cached.until:
                return cached.identity
            if _on_loop():
                self._renew_in_background()
                return cached.identity
        with self._me_lock:
            cached = self._me_cache  # renewed by the thread that held the lock before
            if cached is not None and now < cached.until and self._still_held(cached.identity):
                return cached.identity
            return self._renewed(now)

    def _renewed(self, now: int) -> ChannelIdentity:
        """The identity read (and its key renewed when due) now, and cached (`_me_lock` held).
        The one cached before stays shown until this one is: the channel key a renewal
        replaces is kept a grace (`limits.RETIRED_CHANNEL_KEY_GRACE`), so a handshake that
        showed it still does its DH (review 69t, chkeys 1: it failed KeyNotFound)."""
        identity, expiry = self.channel_identity(self.name, now=now)
        replaced = replace_from(identity.attestation)
        shown_until = expiry if replaced is None else min(expiry, replaced)
        self._me_cache = _Cached(identity, min(now + IDENTITY_CACHE, expiry), shown_until)
        return identity

    def _renew_now(self) -> ChannelIdentity:
        """`_renewed` under the lock (on the storage thread)."""
        with self._me_lock:
            return self._renewed(self.clock.now())

    def _renew_in_background(self) -> None:
        renewing = self._renewing
        if renewing is None or renewing.done():
            self._renewing = renewing = asyncio.ensure_future(self.worker.run(self._renew_now))
            renewing.add_done_callback(_consume)

    def _still_held(self, identity: ChannelIdentity) -> bool:
        """Whether the vault still holds the channel key `identity` shows: a rotation in
        another process (`troth identity rotate` beside the running node) deleted it with the
        history it was attested under, and the node then shows the new history and key at its
        next handshake, not the retired ones for the rest of IDENTITY_CACHE (review 48l,
        rotate 2). A cached key costs the vault one look at the store's data version."""
        static = identity.static
        if not isinstance(static, VaultDhKey):
            return True
        try:
            static.vault.public_key(static.handle)
        except KeyNotFound:
            return False
        return True

    def channel_identity(self, name: str, *, now: int) -> tuple[ChannelIdentity, int]:
        """Local identity `name` as one end of a channel (its history, channel key and live
        credentials: those no feed the node holds revokes a link of or supersedes an issuer's
        history in, as a peer refuses a channel that shows one — review 34b, presented 1 and
        2: a delegation its delegator revoked, or one whose delegator rotated since, cut the
        node off from every node trusting its authority; each authority's that expires last
        first, review 35a shown 1), and when that stops being valid (reads the store)."""
        identities, wallet = self.node.identities, self.node.wallet
        handle, key = identities.purpose_key(name, KeyPurpose.SECURE_CHANNEL, now=now)
        feeds = self.trust.feeds
        checkpoints = wallet.checkpoints(now=now, max_staleness=FEED_STALENESS)
        seen: dict[tuple[bytes, bytes], bool] = {}  # each history judged once (69e, store 1)
        live = [
            held
            for held in wallet.presentable(name, now=now)
            if not revokes_a_link(held.chain, feeds.get)
            and not supersedes_an_issuer(
                held.chain, feeds.get, now=now, checkpoints=checkpoints, seen=seen
            )
        ]
        history = identities.export(name)
        ordered = tuple(h.chain for h in _each_authority_first(live))
        chains = fitting_chains(history, key.attestation, ordered)  # review 45g, channel 1
        expiry = min([key.expires_at, *(h.expires_at for h in live)])
        identity = ChannelIdentity(
            history, VaultDhKey(self.node.vault, handle), key.attestation, chains
        )
        return identity, expiry

    async def channel_as(
        self, name: str, route: Route, *, expect: Identifier | None = None
    ) -> ChannelEnd:
        """A new channel of its own to the node at `route`, as local identity `name` (the peer
        decides its requests on `name`'s identity and credentials; never shared)."""
        identity = await self._shown_as(name)
        trust = self._channel_trust(expect=expect) if expect is not None else None
        return await self.channels.open(route, trust=trust, me=identity)

    async def _shown_as(self, name: str) -> ChannelIdentity:
        """Local identity `name` as a channel of its own shows it: its credentials that no feed
        the node holds revokes (a revoked one would fail the channel)."""
        identity, _ = await self.worker.run(self.channel_identity, name, now=self.clock.now())
        chains = unrevoked(identity.credentials, self.trust.feeds)
        return dataclasses.replace(identity, credentials=chains)

    async def _renew_identity(self) -> ChannelIdentity:
        """The identity read again on the storage thread (its channel key renewed when due),
        the cached one shown meanwhile: the old cache cleared first, a handshake in between
        renewed the key on the loop too, two keys made and one orphaned in the vault (review
        69j, gaps 1). Renewals hold `_me_lock`: one at a time, each seeing the one before."""
        return await self.worker.run(self._renew_now)


def _on_loop() -> bool:
    """Whether the calling thread runs an event loop (the handshake path)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _consume(future: asyncio.Future[ChannelIdentity]) -> None:
    """A background renewal's failure is the maintenance round's to retry (its store)."""
    if not future.cancelled():
        future.exception()


def _each_authority_first(held: list[HeldCredential]) -> list[HeldCredential]:
    """`held` (newest expiry first) with each authority's chain that expires last first, then
    each root member's, then the others as they were: the node shows MAX_CHANNEL_CREDENTIALS,
    and one authority's chains expiring later (a co-trusted authority's node choosing its
    answers' expiry, or a TTL under the refresh margin, refreshed every round) pushed another's
    off its channels (review 35a, shown 1); a refresh of the node's own credential (the old one
    held until it expires) pushed a member's delegation off, and a peer's re-check closed the
    channel that no longer showed that member (review 58u, channels 1). A root member an
    authority's first already shows is given no second place: the old credential of the node
    took one beside its refreshed one, and with seven members a member's fell off (review 59f,
    channels 1). Root members are per authority: a member's chain under one shows nothing to a
    peer trusting only another, whose chain of it lost its place (review 59k, channels 1)."""
    first: dict[bytes, HeldCredential] = {}
    for h in held:
        first.setdefault(h.authority, h)
    chosen = {id(h) for h in first.values()}
    shown = {(h.authority, _root_member(h)) for h in first.values()}
    members: dict[tuple[bytes, bytes], HeldCredential] = {}
    for h in held:
        if id(h) not in chosen and (root := (h.authority, _root_member(h))) not in shown:
            members.setdefault(root, h)
    chosen.update(id(h) for h in members.values())
    return [*first.values(), *members.values(), *(h for h in held if id(h) not in chosen)]


def _root_member(held: HeldCredential) -> bytes:
    """The member at the root of `held`'s chain (its first link's subject); a chain that does
    not decode (stored verified, so never) is a root of its own."""
    try:
        first = CredentialChain.decode(held.chain).credentials[0]
        return CredentialBody.decode(first.body).subject.digest
    except (DecodeError, IndexError):
        return held.id
