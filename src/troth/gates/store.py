"""Each authority's active policy bundle, persisted, swapped atomically (docs/policy.md,
"Bundles on a node").

A `BundleStore` accepts a bundle only when it verifies and its revision is higher than the one
held (the same bytes again are accepted as a no-op), persists it, then swaps it in with one
assignment of an immutable object, so a decision made during a swap uses one bundle or the
other, never a mix. It answers an engine only while the bundle is unexpired, the authority's
feed is complete and fresh, and that feed revokes nothing of the bundle's signer; otherwise
it raises PolicyError and the decision point denies.

Persistence: the last good bundle per authority, in table `gates_policy_bundles` created by
this module in the node's database (`CREATE TABLE IF NOT EXISTS`), written with a conditional
upsert so two processes can never roll a revision back. Bundles read back are the node's own
(verified when stored): signatures and compilation are checked again, revocations at every
decision. A bundle another process stored is seen after `reload`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from troth.credentials import ChainVerifier, VerifiedFeed
from troth.errors import CredentialError, PolicyError, PolicyFailure
from troth.gates.bundles import VerifiedBundle, decode_bundle, load_stored_bundle, verify_bundle
from troth.gates.engine import PolicyEngine
from troth.identity import Identifier, VerifiedIdentity
from troth.storage.sqlite import SqliteDatabase

__all__ = ["ActiveBundle", "BundleStore", "BundleTable", "MemoryBundleTable", "SqliteBundleTable"]

_P = PolicyFailure


class BundleTable(Protocol):
    """Where a node keeps the last good bundle of each authority."""

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        """Store `data` unless a bundle of `revision` or higher is stored; whether it was."""
        ...

    def revisions(self) -> dict[bytes, int]:
        """The stored revision of each authority (cheap: read at every decision of a gate
        that shares the table with another process)."""
        ...

    def load(self, authority: bytes) -> bytes | None:
        """The stored bundle of `authority`, if any."""
        ...


class MemoryBundleTable:
    """A BundleTable in memory (agents without a node, tests)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        with self._lock:
            held = self._rows.get(authority)
            if held is not None and held[0] >= revision:
                return False
            self._rows[authority] = (revision, data)
            return True

    def revisions(self) -> dict[bytes, int]:
        return {authority: revision for authority, (revision, _) in self._rows.items()}

    def load(self, authority: bytes) -> bytes | None:
        row = self._rows.get(authority)
        return None if row is None else row[1]


class SqliteBundleTable:
    """A BundleTable in the node's SQLite database (its own table, made on first use)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS gates_policy_bundles (authority BLOB PRIMARY KEY, "
            "revision INTEGER NOT NULL, bundle BLOB NOT NULL, stored_at INTEGER NOT NULL)"
        )

    def save_if_newer(self, authority: bytes, revision: int, data: bytes, now: int) -> bool:
        cursor = self.db.execute(
            "INSERT INTO gates_policy_bundles (authority, revision, bundle, stored_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (authority) DO UPDATE SET "
            "revision = excluded.revision, bundle = excluded.bundle, "
            "stored_at = excluded.stored_at WHERE excluded.revision > revision",
            (authority, revision, data, now),
        )
        return cursor.rowcount == 1

    def revisions(self) -> dict[bytes, int]:
        rows = self.db.fetch_all("SELECT authority, revision FROM gates_policy_bundles")
        return {bytes(a): int(r) for a, r in rows}

    def load(self, authority: bytes) -> bytes | None:
        rows = self.db.fetch_all(
            "SELECT bundle FROM gates_policy_bundles WHERE authority = ?", (authority,)
        )
        return bytes(rows[0][0]) if rows else None


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
    ) -> None:
        self.verifier = verifier
        self.table: BundleTable = table if table is not None else MemoryBundleTable()
        self._known = known
        self._active: dict[Identifier, ActiveBundle] = {}
        self._unloadable: set[tuple[bytes, int]] = set()
        self._lock = threading.Lock()

    def accept(
        self, data: bytes, *, feeds: Mapping[Identifier, VerifiedFeed], now: int
    ) -> VerifiedBundle:
        """Verify and activate a bundle of a higher revision than the one held (PolicyError
        ROLLBACK otherwise; the bytes already active are accepted again as a no-op)."""
        claimed = decode_bundle(data)  # a replayed old revision costs only its decoding
        held = self._active.get(claimed.authority)
        if held is not None and held.bundle.data == data:
            return held.bundle
        if held is not None and claimed.revision <= held.bundle.body.revision:
            raise PolicyError(_P.ROLLBACK, f"{claimed.revision} <= {held.bundle.body.revision}")
        verified = verify_bundle(
            data, verifier=self.verifier, feeds=feeds, now=now, known=self._known
        )
        body = verified.body
        with self._lock:
            held = self._active.get(body.authority)
            if held is not None and body.revision <= held.bundle.body.revision:
                raise PolicyError(_P.ROLLBACK, f"{body.revision} <= {held.bundle.body.revision}")
            if not self.table.save_if_newer(body.authority.digest, body.revision, data, now):
                raise PolicyError(_P.ROLLBACK, "a newer revision is stored: reload")
            self._active[body.authority] = _activate(verified)
        return verified

    def reload(self, *, now: int) -> list[VerifiedBundle]:
        """Activate the stored bundles newer than the active ones (at start, or after another
        process stored one); a stored bundle that no longer loads is left inactive. Only the
        stored revisions are read when nothing changed (a gate sharing the node's table calls
        this before each decision; a revision that failed to load is not tried again)."""
        loaded = []
        for digest, revision in self.table.revisions().items():
            held = self._active.get(Identifier(digest))
            if (held is not None and revision <= held.bundle.body.revision) or (
                digest,
                revision,
            ) in self._unloadable:
                continue
            data = self.table.load(digest)
            try:
                if data is None:
                    continue
                verified = load_stored_bundle(data, verifier=self.verifier, now=now)
            except PolicyError:
                self._unloadable.add((digest, revision))
                continue
            if self._activate_if_newer(verified):
                loaded.append(verified)
        return loaded

    def use(self, verifier: ChainVerifier) -> None:
        """Verify with `verifier` from now on (the holder's anchors changed): stored bundles
        that did not load are tried again."""
        self.verifier = verifier
        self._unloadable.clear()

    def _activate_if_newer(self, verified: VerifiedBundle) -> bool:
        with self._lock:
            held = self._active.get(verified.body.authority)
            if held is None or verified.body.revision > held.bundle.body.revision:
                self._active[verified.body.authority] = _activate(verified)
                return True
        return False

    def active(self, authority: Identifier) -> ActiveBundle | None:
        """The active bundle of `authority` (whether or not it is in force now)."""
        return self._active.get(authority)

    def actives(self) -> list[ActiveBundle]:
        """Every active bundle (in force or not), by authority."""
        return [self._active[a] for a in sorted(self._active, key=lambda a: a.digest)]

    def declares(self, service: str) -> bool:
        """Whether an active bundle (in force or not) declares node service `service`: the
        node then decides its requests with Cedar too (docs/policy.md, "Services")."""
        return any(service in held.bundle.body.services for held in self._active.values())

    def engine(self, authority: Identifier, *, feed: VerifiedFeed | None, now: int) -> PolicyEngine:
        """The engine of `authority`'s bundle if it is in force at `now` with `feed` (the
        authority's current feed), else PolicyError: no bundle, expired, stale feed, or its
        signer revoked."""
        held = self._active.get(authority)
        if held is None:
            raise PolicyError(_P.NO_BUNDLE, str(authority))
        bundle = held.bundle
        if now >= bundle.body.expires_at:
            raise PolicyError(_P.EXPIRED, f"at {bundle.body.expires_at}")
        try:
            if feed is None or feed.authority != authority:
                raise PolicyError(_P.STALE_FEED, "no feed of the authority")
            feed.check_fresh(now=now, max_staleness=self.verifier.policy.max_feed_staleness)
        except CredentialError as exc:
            raise PolicyError(_P.STALE_FEED, str(exc)) from None
        if bundle.revoked_by(feed):
            raise PolicyError(_P.SIGNER_REVOKED, str(bundle.body.signer))
        return held.engine


def _activate(bundle: VerifiedBundle) -> ActiveBundle:
    return ActiveBundle(bundle, PolicyEngine(bundle.compiled, revision=bundle.body.revision))
