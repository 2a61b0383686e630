"""Each authority's active policy bundle, persisted, swapped atomically (docs/policy.md,
"Bundles on a node").

A `BundleStore` accepts a bundle only when it verifies and its revision is higher than the one
held, or the same with a lower digest (of two bundles of one revision the lower SHA-256 wins on
every node: review 41d, bundles 2; a higher one is refused SAME_REVISION while the held one is
unexpired; the same bytes again are accepted as a no-op), or the same revision whatever its
digest when the held one has expired (it verified at `now`, so it is in force: review 43b,
bundles 3, the lead's decision: a short-lived bundle of the lower digest, once expired, gave
way to a higher revision only and left the node denying), persists it, then swaps it in with one
assignment of an immutable object, so a decision made during a swap uses one bundle or the
other, never a mix. It answers an engine only while the bundle is unexpired, the authority's
feed is complete and fresh, and that feed neither revokes the bundle's signer nor supersedes
a history it was verified with (`VerifiedBundle.check_signer`); otherwise it raises
PolicyError and the decision point denies.

A held bundle whose signer the current feed revokes or supersedes is no longer in force and
never will be again (feeds only grow): a verified bundle of any revision issued since it
(more than the clock skew after it: review 35c, gates 1) replaces it (a rotated authority can
replace what its stolen key signed at the top revision; an older bundle replayed is refused:
review 34f, gates 1). Otherwise a revision lower than the held one's is a rollback and
refused, the held one expired or not: an expired bundle yields to one of its own revision in
force, never to a lower one.

Persistence: the last good bundle per authority, in table `gates_policy_bundles` created by
troth.gates.bundle_tables in the node's database (`CREATE TABLE IF NOT EXISTS`), written with
a conditional upsert so two processes can never roll a revision back, or replaced (a bundle
no longer in force, or by one of its revision: the lower digest, or once it expired) with a
compare-and-set on the bundle the replacing process judged, so of two concurrent replacements
one wins.
Bundles read back are the node's own (verified when stored): signatures and compilation are
checked again, revocations and supersessions at every decision. A bundle another process
stored (or replaced) is seen after `reload`.

Every bundle stored (or replaced) counts in the node's rollback guard (scope `policy`:
troth.storage.rollback; docs/storage.md, "Rollback guard"), so a node.db restored from a copy
taken before it is found when the table is opened: each bundle the copy holds is then **held
back** (table `gates_policy_held_back`): still active (a service its bundle declares stays
under Cedar) but deciding nothing, every decision denied (PolicyFailure.RESTORED), until a
bundle of its authority is stored or the same bytes are accepted again (`BundleStore.confirm`:
a reinstall, a push, a pull's answer; a node holding one back asks its authority's node for
that revision or newer, and hands it to no one; review 54p, rollback 1: the copy's older
bundle decided, unseen, until the next pull).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from troth import limits
from troth.credentials import ChainVerifier, VerifiedFeed
from troth.crypto import sha256
from troth.errors import CredentialError, PolicyError, PolicyFailure, PolicyNotChecked
from troth.gates.bundle_tables import BundleTable, MemoryBundleTable, SqliteBundleTable, Stamp
from troth.gates.bundles import (
    BundleBody,
    KnownIn,
    VerifiedBundle,
    bundle_claims,
    load_stored_bundle,
    verify_bundle,
)
from troth.gates.dormant import DormantBundles
from troth.gates.engine import PolicyEngine
from troth.identity import Checkpoints, Identifier, VerifiedIdentity

__all__ = [
    "ActiveBundle",
    "BundleConflict",
    "BundleStore",
    "BundleTable",
    "MemoryBundleTable",
    "SqliteBundleTable",
]

_P = PolicyFailure
_UNTIMELY = frozenset({_P.NOT_YET_VALID, _P.EXPIRED})
"""Refusals of a stored bundle for the time alone (`reload` tries it again in its window)."""


@dataclass(frozen=True, slots=True)
class BundleConflict:
    """Two different verified bundles of one authority with the same `revision` (SHA-256
    digests): `kept` decides — the lower digest, on every node, unless the other was out of
    force for good or expired, and replaced (review 43b, bundles 3) — and `other` was refused
    or replaced (review 41d, bundles 2)."""

    authority: Identifier
    revision: int
    kept: bytes
    other: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": str(self.authority),
            "revision": self.revision,
            "kept": self.kept.hex(),
            "other": self.other.hex(),
        }


@dataclass(frozen=True, slots=True, eq=False)
class ActiveBundle:
    """A verified bundle and the engine deciding by it (swapped as one object)."""

    bundle: VerifiedBundle
    engine: PolicyEngine


class BundleStore:
    """The active bundle of each trusted authority (see the module docstring)."""

    def __init__(
        self,
        verifier: ChainVerifier,
        table: BundleTable | None = None,
        *,
        known: Callable[[VerifiedIdentity], None] | None = None,
        known_in: KnownIn | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        """`known` (or `known_in`, told the bundle's authority too): the store-or-extend
        check of a verified signer's history (`verify_bundle`); `checkpoints`: what attests
        a stored bundle's checkpointed histories (`load_stored_bundle`)."""
        self.verifier = verifier
        self._checkpoints = checkpoints
        self.table: BundleTable = table if table is not None else MemoryBundleTable()
        self._known = known
        self._known_in = known_in
        self._active: dict[Identifier, ActiveBundle] = {}
        self._seen: dict[bytes, Stamp] = {}  # the table's stamp last loaded, per authority
        self._unloadable: set[tuple[bytes, Stamp]] = set()
        # (digest, stamp) -> (when it was last tried, the wait before the next try): bundles
        # whose policies could not be checked (PolicyNotChecked), tried again after a backoff
        self._unchecked: dict[tuple[bytes, Stamp], tuple[int, int]] = {}
        # (digest, stamp) -> the times [from, until) it can load at: bundles refused for the
        # time only (not yet valid, expired), tried again when the clock is inside that window
        # (review 41d, bundles 1: kept unloadable for good, a node restarted with its clock
        # behind never activated its own bundle)
        self._untimely: dict[tuple[bytes, Stamp], tuple[int, int]] = {}
        # the active bundle, the feed object its signer last passed `check_signer` with and the
        # staleness limit that feed was fresh by, per authority digest: a VerifiedFeed is
        # immutable, so the same pair passes again, the feed fresh until it is older (`engine`)
        self._signer_checked: dict[bytes, tuple[ActiveBundle, VerifiedFeed, int]] = {}
        self._conflicts: dict[Identifier, BundleConflict] = {}
        # the conflicts seen per authority (at most MAX_POLICY_CONFLICTS_SEEN each): a replay
        # of one is refused on its decoding and not counted again (review 43b, bundles 2)
        self._conflicts_seen: dict[Identifier, set[tuple[int, bytes, bytes]]] = {}
        # the authorities whose stored bundle is held back (a restored copy: module
        # docstring), read from the table at the first reload, again at each while any is
        self._held_back: frozenset[bytes] | None = None
        self.dormant = DormantBundles()  # the table's bundles not loaded (57a, gates 1-3)
        self.conflicts_noted = 0
        """How many different same-revision conflicts this store has seen (a node logs each
        new one once: review 43b, bundles 2)."""
        self._lock = threading.Lock()
        self._reloading = threading.Lock()  # reloads take turns (review 70i, leftovers 3)

    def accept(
        self,
        data: bytes,
        *,
        feeds: Mapping[Identifier, VerifiedFeed],
        now: int,
        confirms: bool = True,
    ) -> VerifiedBundle:
        """Verify and activate a bundle of a higher revision than the one held, of the same
        revision with a lower digest (SHA-256 of `data`: the one every node keeps; review 41d,
        bundles 2) or whatever its digest once the held one has expired at `now` (review 43b,
        bundles 3), or of any revision issued since the held one when `feeds` says that one is
        no longer in force (its signer revoked or superseded); PolicyError SAME_REVISION for
        the same revision with a higher digest (recorded: `conflicts`), ROLLBACK otherwise.
        The bytes already active are accepted again as a no-op. The table's bundle not active
        here (it did not load at `reload`: expired then) is replaced by the same rules
        (`_replace_stored`: review 43b, bundles 3; review 54h, bundles 4). The bytes held
        back given again let them decide (`confirm`) unless `confirms` is False (a copy from
        no one who knows better: review 54t, policy 1)."""
        claimed = bundle_claims(data)  # a replay costs its claims' decoding (54h, bundles 2)
        skew = self.verifier.policy.max_clock_skew
        feed = feeds.get(claimed.authority)
        held = self._active.get(claimed.authority)
        if held is not None and held.bundle.data == data:
            if confirms:  # accepted again: a held-back bundle decides
                self.confirm(claimed.authority)
            return held.bundle
        digest = sha256(data)
        refusal = None if held is None else _rollback(claimed, digest, held, feed, skew, now)
        # a refusal on the decoding alone records nothing: a same-revision bundle is verified
        # before it is recorded as a conflict (review 43b, bundles 1: a forged one, its
        # signature broken, was reported as the authority signing twice), unless this very
        # conflict is already known (a replay costs its decoding: review 43b, bundles 2)
        if refusal is not None and (
            refusal[0] is not _P.SAME_REVISION
            or held is None
            or (claimed.revision, held.bundle.digest, digest) in self._seen_conflicts(claimed)
        ):
            raise PolicyError(*refusal)
        if held is None or claimed.revision > held.bundle.body.revision:
            self._below_stored(claimed, skew)
        verified = verify_bundle(
            data,
            verifier=self.verifier,
            feeds=feeds,
            now=now,
            known=self._known,
            known_in=self._known_in,
        )
        body = verified.body
        authority = body.authority.digest
        with self._lock:
            held = self._active.get(body.authority)
            if held is not None and held.bundle.data == data:  # another thread's accept of it
                if confirms:  # meanwhile: the no-op above (review 68j, store 3), or a reload's
                    self._confirm(body.authority)  # (held back: 68s store 1)
                return held.bundle
            refusal = None
            if held is not None:
                refusal = _rollback(body, verified.digest, held, feed, skew, now)
            if held is None or body.revision > held.bundle.body.revision:
                if not self.table.save_if_newer(
                    authority, body.revision, data, now
                ) and not self._replace_stored(body, verified.digest, data, feed, now, confirms):
                    raise PolicyError(_P.ROLLBACK, "a newer revision is stored: reload")
            elif refusal is not None:
                self._note_refused(body, verified.digest, held, refusal)
                raise PolicyError(*refusal)
            elif not self.table.replace(
                authority, held.bundle.data, body.revision, data, now
            ) and not self._replace_stored(body, verified.digest, data, feed, now, confirms):
                raise PolicyError(_P.ROLLBACK, "another bundle was stored meanwhile: reload")
            if held is not None and held.bundle.body.revision == body.revision:
                self._note(body.authority, body.revision, verified.digest, held.bundle.digest)
            self._active[body.authority] = _activate(verified)
            self.dormant.drop(authority)
            self._seen[authority] = (body.revision, verified.digest)
            if self._held_back:  # the table let it decide in its commit
                self._held_back = self._held_back - {authority}
        return verified

    def held_back(self, authority: Identifier) -> bool:
        """Whether `authority`'s bundle came back with a restored copy of the node's table and
        decides nothing until confirmed (module docstring; review 54p, rollback 1)."""
        if self._held_back is None:
            self._held_back = self.table.held_back()
        return authority.digest in self._held_back

    def confirm(self, authority: Identifier) -> bool:
        """Let `authority`'s held-back bundle decide again (its bytes were accepted again: a
        reinstall, a push, a pull's answer); whether it was held back. Writes the table when
        it was: call off the event loop."""
        with self._lock:
            return self._confirm(authority)

    def _confirm(self, authority: Identifier) -> bool:
        if not self.held_back(authority):  # under the lock
            return False
        self.table.confirm(authority.digest)
        self._held_back = (self._held_back or frozenset()) - {authority.digest}
        return True

    def _replace_stored(
        self,
        body: BundleBody,
        digest: bytes,
        data: bytes,
        feed: VerifiedFeed | None,
        now: int,
        confirms: bool,
    ) -> bool:
        """Store `data` (verified, of `body` and `digest`) in place of the table's bundle of
        its authority, not active here (it did not load at `reload`: expired, or not yet
        valid, then), when `data` would replace it were it held: of the same revision, its
        digest lower or the stored one expired at `now` (review 43b, bundles 3: a node
        restarted after its bundle expired was refused the other bundle of that revision for
        good, ROLLBACK, its table holding that revision; the conflict is recorded); or of any
        revision issued since it (more than the clock skew after) when `feed` says the stored
        one is out of force for good, its signer revoked or superseded (review 54h, bundles 4:
        a node restarted after a thief's bundle at the top revision expired refused every
        replacement below it for good). Whether it was stored, or is (`data` is the table's
        bundle, not held back: review 57j, gates 1, it was refused as a rollback while it did
        not load; held back, it is confirmed when `confirms`, else RESTORED: review 69e, store
        3, the same bytes from a pull's answer were refused ROLLBACK and confirmed nothing).
        The table's bundle is this node's own, verified when stored: its decoding says its
        revision and lifetime, and, read as at its issue, its signer's chain and histories.
        Under the lock."""
        authority = body.authority.digest
        stored = self.table.load(authority)
        if stored is None:
            return False
        if stored == data:
            if not self.held_back(body.authority) or (confirms and self._confirm(body.authority)):
                return True
            raise PolicyError(
                _P.RESTORED,
                f"revision {body.revision} came back with a restored copy of node.db: the same "
                f"bundle from {body.authority}'s node, or installed again, lets it decide",
            )
        try:
            old = bundle_claims(stored)
        except PolicyError:
            return False
        stored_digest = sha256(stored)
        same = old.revision == body.revision and (digest < stored_digest or now >= old.expires_at)
        if not same and not self._out_of_force(stored, old, body, feed):
            return False
        if not self.table.replace(authority, stored, body.revision, data, now):
            return False
        if same:
            self._note(body.authority, body.revision, digest, stored_digest)
        return True

    def _below_stored(self, body: BundleBody, skew: int) -> None:
        """ROLLBACK, on the claims alone, for a bundle of `body` the table's bundle of its
        authority (not active here, or newer than the active one) refuses whatever the
        verification says: of a lower revision, and not issued since it (`_replace_stored`
        would refuse it once verified; review 54h, bundles 6: a member's replay of a genuine
        older bundle to a node restarted after its bundle expired was verified, its policies
        compiled, at every push)."""
        authority = body.authority.digest
        stamp = self.table.stamps().get(authority)
        if stamp is None or stamp[0] <= body.revision:
            return
        stored = self.table.load(authority)
        try:
            old = None if stored is None else bundle_claims(stored)
        except PolicyError:
            return
        if old is None or old.revision <= body.revision:
            return
        if body.issued_at <= old.issued_at + skew:
            raise PolicyError(
                _P.ROLLBACK,
                f"{body.revision} < {old.revision}, the stored revision, and issued at "
                f"{body.issued_at}, not since it (issued at {old.issued_at})",
            )

    def _out_of_force(
        self, stored: bytes, old: BundleBody, body: BundleBody, feed: VerifiedFeed | None
    ) -> bool:
        """Whether the table's bundle `stored` (of `old`), not active here, is out of force
        for good by `feed` and `body` was issued since it (`_rollback`'s rule for a held one):
        read as at its issue, when it verified (`load_stored_bundle`)."""
        skew = self.verifier.policy.max_clock_skew
        if (
            feed is None
            or feed.authority != old.authority
            or body.issued_at <= old.issued_at + skew
        ):
            return False
        try:
            judged = load_stored_bundle(
                stored, verifier=self.verifier, now=old.issued_at, checkpoints=self._checkpoints
            )
        except PolicyError:  # it does not load (nor, then, decide): no judgement on it
            return False
        return not judged.signer_in_force(feed)

    def _note_refused(
        self,
        body: BundleBody,
        digest: bytes,
        held: ActiveBundle | None,
        refusal: tuple[PolicyFailure, str],
    ) -> None:
        """Record a bundle refused for a lower digest held at its revision (`conflicts`)."""
        if held is not None and refusal[0] is _P.SAME_REVISION:
            self._note(body.authority, body.revision, held.bundle.digest, digest)

    def _note(self, authority: Identifier, revision: int, kept: bytes, other: bytes) -> None:
        """Keep `(revision, kept, other)` as `authority`'s last same-revision conflict; a
        conflict not seen before adds one to `conflicts_noted`."""
        self._conflicts[authority] = BundleConflict(authority, revision, kept, other)
        seen = self._conflicts_seen.setdefault(authority, set())
        if (revision, kept, other) in seen:
            return
        if len(seen) >= limits.MAX_POLICY_CONFLICTS_SEEN:
            seen.clear()
        seen.add((revision, kept, other))
        self.conflicts_noted += 1

    def _seen_conflicts(self, body: BundleBody) -> set[tuple[int, bytes, bytes]]:
        return self._conflicts_seen.get(body.authority, set())

    def conflicts(self) -> list[BundleConflict]:
        """The last conflict seen per authority: two different bundles of one revision, the
        one of the lower digest kept unless the other one expired (docs/policy.md, "Bundles on
        a node": review 41d, bundles 2; review 43b, bundles 3). A node's status shows them and
        its log says each."""
        return [self._conflicts[a] for a in sorted(self._conflicts, key=lambda a: a.digest)]

    def reload(self, *, now: int) -> list[VerifiedBundle]:
        """Activate the stored bundles this store has not loaded (at start, or after another
        process stored or replaced one): a higher revision than the active one, or another
        bundle in its place (a replacement of one no longer in force: the table only moves
        back that way). A stored bundle that no longer loads is left inactive. Only the
        stamps are read when nothing changed (a gate sharing the node's table calls this
        before each decision; a stamp refused for what it is is not tried again). One whose
        policies could not be checked (PolicyNotChecked: the validating process did not start
        or finish, on a loaded machine) stays inactive (fail closed) and is tried again at a
        reload once its backoff is over (CEDAR_RETRY_FIRST_SECONDS, doubling up to
        CEDAR_RETRY_MAX_SECONDS: review 25, gates 3; review 26c, gates 2), or at once when
        `now` is before its last try (a clock set back: review 27d, gates 1). One refused for
        the time alone (not yet valid, expired) is tried again at a reload whose `now` is
        inside its lifetime (a node restarted with its clock behind, then set right: review
        41d, bundles 1). Reloads take turns, the second finding what the first loaded: run at
        once, two threads (gates sharing the node's table) each read and verified the same
        bundle, and one whose check could not be made noted dormant the bundle the other had
        just activated, listed as not loaded while it decided (review 70i, leftovers 3)."""
        with self._reloading:
            return self._reload(now)

    def _reload(self, now: int) -> list[VerifiedBundle]:
        if self._held_back is None or self._held_back:  # one read while any is held back
            self._held_back = self.table.held_back()
        loaded = []
        for digest, stamp in self.table.stamps().items():
            key = (digest, stamp)
            if self._seen.get(digest) == stamp or key in self._unloadable:
                continue
            window = self._untimely.get(key)
            if window is not None and not window[0] <= now < window[1]:
                continue
            retry = self._unchecked.get(key)
            # within the wait since the last try; a clock set back before that try tries it
            # now, as a wait longer than the one set (review 27d, gates 1)
            if retry is not None and 0 <= now - retry[0] < retry[1]:
                continue
            data = self.table.load(digest)
            if data is None:
                continue
            try:
                verified = load_stored_bundle(
                    data, verifier=self.verifier, now=now, checkpoints=self._checkpoints
                )
            except PolicyNotChecked as exc:  # no verdict on it: tried again after a while
                self._not_loaded(digest, data, stamp[0], exc.reason)  # deny meanwhile
                wait = limits.CEDAR_RETRY_FIRST_SECONDS
                if retry is not None:
                    wait = min(2 * retry[1], limits.CEDAR_RETRY_MAX_SECONDS)
                self._unchecked[key] = (now, wait)
                continue
            except PolicyError as exc:
                self._unchecked.pop(key, None)
                self._not_loaded(digest, data, stamp[0], exc.reason)
                if exc.reason in _UNTIMELY:  # the clock's doing: loads at another time
                    body = bundle_claims(data)
                    skew = self.verifier.policy.max_clock_skew
                    self._untimely[key] = (body.issued_at - skew, body.expires_at)
                else:
                    self._untimely.pop(key, None)
                    self._unloadable.add(key)
                continue
            self._unchecked.pop(key, None)
            self._untimely.pop(key, None)
            if self._activate_stored(verified, stamp):
                loaded.append(verified)
        return loaded

    def _not_loaded(self, authority: bytes, data: bytes, revision: int, why: PolicyFailure) -> None:
        """Note the table's bundle `data` of `authority`, which did not load for `why`, as
        dormant (it puts the active one out of force: `DormantBundles`), if the table still
        holds it: read again under the lock, as `_activate_stored` does. An `accept` in another
        thread (or another process) that stored and activated a bundle in its place while this
        one was read and verified left it noted after the drop of its own commit: the bundle
        that replaced it then decided nothing, for good, and `troth policy show` said the
        table's bundle did not load (review 68j, store 1)."""
        with self._lock:
            if self.table.load(authority) == data:
                self.dormant.note(authority, data, revision, why)

    def use(self, verifier: ChainVerifier) -> None:
        """Verify with `verifier` from now on (the holder's anchors changed): stored bundles
        that did not load are tried again."""
        self.verifier = verifier
        self._unloadable.clear()
        self._unchecked.clear()
        self._untimely.clear()

    def _activate_stored(self, verified: VerifiedBundle, stamp: Stamp) -> bool:
        """Activate a bundle read from the table: a higher revision than the active one, or
        another bundle still stored in its place (read again under the lock, so a concurrent
        `accept` of a newer one is never undone)."""
        authority = verified.body.authority
        with self._lock:
            held = self._active.get(authority)
            newer = held is None or verified.body.revision > held.bundle.body.revision
            replaced = (
                not newer
                and held is not None
                and held.bundle.data != verified.data
                and self.table.load(authority.digest) == verified.data
            )
            if (
                replaced
                and held is not None
                and held.bundle.body.revision == verified.body.revision
            ):
                self._note(authority, verified.body.revision, verified.digest, held.bundle.digest)
            if newer or replaced:
                self._active[authority] = _activate(verified)
            self.dormant.drop(authority.digest)
            self._seen[authority.digest] = stamp
            return newer or replaced

    def active(self, authority: Identifier) -> ActiveBundle | None:
        """The active bundle of `authority` (whether or not it is in force now)."""
        return self._active.get(authority)

    def actives(self) -> list[ActiveBundle]:
        """Every active bundle (in force or not), by authority."""
        return [self._active[a] for a in sorted(self._active, key=lambda a: a.digest)]

    def declares(self, service: str, authority: Identifier | None = None) -> bool:
        """Whether an active bundle (in force or not), or a table's bundle that did not load
        (`DormantBundles`: review 57a, gates 1), declares node service `service`: the node
        then decides its requests with Cedar too (docs/policy.md, "Services"); with
        `authority`, whether that authority's bundle does."""
        if authority is not None:
            held = self._active.get(authority)
            if held is not None and service in held.bundle.body.services:
                return True
            return self.dormant.declares(service, authority.digest)
        return any(
            service in held.bundle.body.services for held in self._active.values()
        ) or self.dormant.declares(service)

    def replaceable(self, authority: Identifier, feed: VerifiedFeed | None) -> bool:
        """Whether `feed` (the authority's current feed) says the active bundle of
        `authority` is no longer in force for good (its signer revoked or superseded), so a
        bundle of any revision issued since it may replace it (none held: False)."""
        held = self._active.get(authority)
        return held is not None and _newer(0, held, feed)

    def engine(self, authority: Identifier, *, feed: VerifiedFeed | None, now: int) -> PolicyEngine:
        """The engine of `authority`'s bundle if it is in force at `now` with `feed` (the
        authority's current feed), else PolicyError: no bundle, expired, stale feed, its
        signer revoked or a history it was verified with superseded or past its current key's
        `valid_until` (SIGNER_INVALID, as a node loading it refuses it: review 75l, issuance 6,
        held, it decided until its own expiry), or a newer revision in the table that did not
        load here (`DormantBundles`: review 57a, gates 2)."""
        held = self._active.get(authority)
        if held is None:
            raise PolicyError(_P.NO_BUNDLE, str(authority))
        if self.held_back(authority):  # deny while in doubt (review 54p, rollback 1)
            raise PolicyError(
                _P.RESTORED,
                f"revision {held.bundle.body.revision}: the same bundle pulled from {authority}'s "
                "node, or installed again, or a newer one lets it decide",
            )
        bundle = held.bundle
        self.dormant.check_active(authority.digest, bundle.body.revision, bundle.digest)
        if now >= bundle.body.expires_at:
            raise PolicyError(_P.EXPIRED, f"at {bundle.body.expires_at}")
        keys_valid_until = min(h.current.body.valid_until for h in bundle.signer_histories)
        if now > keys_valid_until:  # as every node loading it refuses it (review 75l, issuance 6)
            raise PolicyError(
                _P.SIGNER_INVALID,
                f"its signer's (or a chain issuer's) key was valid until {keys_valid_until}",
            )
        staleness = self.verifier.policy.max_feed_staleness
        checked = self._signer_checked.get(authority.digest)
        same = type(authority) is Identifier and checked == (held, feed, staleness)
        # the same bundle, feed and limit passed: only the feed's age can change (review 64g)
        if same and feed is not None and type(staleness) is int:  # noqa: SIM102
            if now - feed.issued_at <= staleness:
                return held.engine
        try:
            if feed is None or feed.authority != authority:
                raise PolicyError(_P.STALE_FEED, "no feed of the authority")
            feed.check_fresh(now=now, max_staleness=staleness)
        except CredentialError as exc:
            raise PolicyError(_P.STALE_FEED, str(exc)) from None
        if checked is None or checked[0] is not held or checked[1] is not feed:
            bundle.check_signer(feed)  # the same feed object says the same: checked once
        self._signer_checked[authority.digest] = (held, feed, staleness)
        return held.engine


def _rollback(
    body: BundleBody,
    digest: bytes,
    held: ActiveBundle,
    feed: VerifiedFeed | None,
    skew: int,
    now: int,
) -> tuple[PolicyFailure, str] | None:
    """Why a bundle of `body` and `digest` (the SHA-256 of its signed bytes) may not replace `held`
    (None: it may), and the reason to refuse it with: a revision lower than the held one's while
    that one is in force (ROLLBACK); the same revision with a higher digest while it is unexpired
    and in force (SAME_REVISION: of two bundles of one revision, the lower digest wins on every node
    whichever it saw first; review 41d, bundles 2); or, the held one out of force for good, a bundle
    not issued since it. A bundle of the held one's revision and a lower digest replaces it, in
    force or not: it is the one every node keeps; one of a higher digest replaces it once it has
    expired at `now` (review 43b, bundles 3, the lead's decision: the replacement verifies at `now`,
    so it is in force; an expired bundle never yields to a lower revision). A replacement of a
    bundle out of force is a bundle signed since the one it replaces: an older bundle, replayed once
    its successor's signer rotated or was revoked, would bring back what that successor took away
    (review 34f, gates 1). `issued_at` is each signer's own clock, taken up to `skew` (the clock
    skew) ahead, so two dates closer than that do not say which bundle was signed first: a
    replacement is dated more than `skew` after (review 35c, gates 1: an older permit-all dated 30 s
    after its successor by a clock running ahead came back; docs/policy.md, "Bundles on a node")."""
    held_body = held.bundle.body
    if body.revision > held_body.revision:
        return None
    if body.revision == held_body.revision and digest < held.bundle.digest:
        return None
    if body.revision == held_body.revision and now >= held_body.expires_at:
        return None  # expired: the bundle of its revision in force decides (bundles 3)
    if not _newer(body.revision, held, feed):
        if body.revision == held_body.revision:
            return (
                _P.SAME_REVISION,
                f"revision {body.revision} of digest {digest.hex()} is not the one kept: the "
                f"held bundle of that revision has the lower digest {held.bundle.digest.hex()}",
            )
        return _P.ROLLBACK, f"{body.revision} <= {held_body.revision}"
    if body.issued_at <= held_body.issued_at + skew:
        return (
            _P.ROLLBACK,
            f"issued at {body.issued_at}, not since the bundle it would replace (issued at "
            f"{held_body.issued_at}; its signer is no longer in force): a replacement is one "
            f"signed more than the clock skew ({skew} s) after",
        )
    return None


def _newer(revision: int, held: ActiveBundle, feed: VerifiedFeed | None) -> bool:
    """Whether a bundle of `revision` may replace `held`: a higher revision, or any when
    `feed` (the authority's) revokes or supersedes the held bundle's signer."""
    if revision > held.bundle.body.revision:
        return True
    bundle = held.bundle
    if feed is None or feed.authority != bundle.body.authority:
        return False
    return not bundle.signer_in_force(feed)


def _activate(bundle: VerifiedBundle) -> ActiveBundle:
    engine = PolicyEngine(bundle.compiled, revision=bundle.body.revision, digest=bundle.digest)
    return ActiveBundle(bundle, engine)
