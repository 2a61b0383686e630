"""The revocation feeds a lease book holds, and the leases a feed reaches (docs/secrets.md,
"Revocation and its bound"; docs/formats.md, "Whose word counts on an identity").

`HeldFeeds` keeps the newest verified feed of each authority the book was given and refuses a
credential they revoke (at issue, renewal and use); `leases_revoked_by` finds, inside the
book's transaction, the open leases a newly installed feed ends. `LeaseBook.revoke_for_feed`
(troth.secrets.book) installs the feed before that transaction scans, so a lease written
concurrently is either refused or found by the scan. `leases_through` finds what an operator's
revocation of an identity ends besides its own leases: those of chains it delegated.
"""

from __future__ import annotations

import json
import threading

from troth.credentials import VerifiedCredential, VerifiedFeed
from troth.errors import CredentialError, SecretError, SecretFailure
from troth.identity import Identifier
from troth.secrets.lease import LIVE_STATES, Lease, LeaseHandle
from troth.secrets.members import CREDENTIAL_MEMBER, IDENTITY_MEMBER, ROOT_MEMBER, standing_member
from troth.secrets.store import SqliteSecretStore

__all__ = ["HeldFeeds", "leases_revoked_by", "leases_through"]

_F = SecretFailure
_LIVE_AUTHORITIES = (
    "SELECT DISTINCT authority FROM secret_leases WHERE state IN (SELECT value FROM json_each(?))"
)


class HeldFeeds:
    """The newest verified revocation feed of each authority (safe to use from several
    threads)."""

    def __init__(self) -> None:
        self._feeds: dict[Identifier, VerifiedFeed] = {}
        self._lock = threading.Lock()

    def install(self, feed: VerifiedFeed) -> None:
        """Hold `feed` unless the feed held of its authority is newer (more entries, or as many
        and issued later)."""
        with self._lock:
            held = self._feeds.get(feed.authority)
            if held is None or (feed.count, feed.issued_at) >= (held.count, held.issued_at):
                self._feeds[feed.authority] = feed

    def check(self, credential: VerifiedCredential, store: SqliteSecretStore) -> None:
        """SecretError REVOKED when the feeds held revoke `credential` (`LeaseBook._check_feed`):
        its authority's, a link, or an issuer's or the presenter's history it supersedes (as
        the gates' decision point reads it; review 54q, delegation 3: a link signed under a
        delegator's retired key renewed and served leases); another authority's, its agent,
        when that authority has standing over it in `store`."""
        feed = self._feeds.get(credential.authority)
        if feed is not None:
            revoked = credential.revoked_link_in(feed)
            if revoked is not None:
                raise SecretError(_F.REVOKED, f"link {revoked} of the credential is revoked")
            try:
                credential.current_in(feed)
            except CredentialError as exc:
                raise SecretError(_F.REVOKED, f"the credential is not current: {exc}") from None
        actor = credential.actor
        with self._lock:
            others = [a for a, f in self._feeds.items() if actor.digest in f.revoked_identities]
        for authority in others:  # one primary-key lookup per feed revoking the agent
            if authority != credential.authority and store.has_member(
                standing_member(authority, actor)
            ):
                raise SecretError(_F.REVOKED, f"the agent is revoked by {authority}")


def leases_revoked_by(store: SqliteSecretStore, feed: VerifiedFeed) -> list[Lease]:
    """The live leases `feed` ends (`LeaseBook.revoke_for_feed` says which), read in the
    caller's transaction."""
    revoked_ids, revoked_creds = feed.revoked_identities, feed.revoked_credentials
    hits = [
        member
        for member in store.members_of_open(feed.authority)
        if member[:1] != ROOT_MEMBER
        and member[1:] in (revoked_creds if member[:1] == CREDENTIAL_MEMBER else revoked_ids)
    ]
    leases: dict[LeaseHandle, Lease] = {}
    standing: set[bytes] = set()  # agents that presented a chain of it (open leases)
    for member in hits:
        for lease in store.leases_with_member(member, LIVE_STATES, feed.authority):
            leases[lease.handle] = lease
            if member[:1] == IDENTITY_MEMBER and lease.identity.digest == member[1:]:
                standing.add(member[1:])
    # an agent it revokes that presented a chain of its own here, its open or ended
    # lease's (review 31b, secrets 3): its live leases under every authority (review
    # 31b, secrets 2); a delegator of its chains only, in its chains (review 32a,
    # secrets 1: it is no voucher of that agent, whose node admits it with another
    # chain). One primary-key lookup per revoked live agent (docs/secrets.md).
    for digest in store.live_agents(LIVE_STATES):
        if digest not in revoked_ids:
            continue
        if digest in standing or store.has_member(
            standing_member(feed.authority, Identifier(digest))
        ):
            agent = Identifier(digest)
            for lease in store.leases_in(LIVE_STATES, identity=agent, limit=None):
                leases[lease.handle] = lease
    return list(leases.values())


def leases_through(
    store: SqliteSecretStore, identity: Identifier, authorities: frozenset[Identifier] | None
) -> list[Lease]:
    """The live leases whose chain names `identity` as a link's issuer or subject — its own,
    and its delegates' under chains it signed, however far down — justified under
    `authorities` (None: any), read in the caller's transaction: what a feed revoking it ends
    of those authorities' leases (`leases_revoked_by`). An operator's revocation of an identity
    whose key was stolen ends what the thief's delegates, minted offline, leased through it
    (review 58d, secrets 2: only the leases it held itself ended)."""
    member = IDENTITY_MEMBER + identity.digest
    if authorities is None:  # the authorities of the live leases (the live states' ranges)
        states = json.dumps(sorted(int(s) for s in LIVE_STATES))
        rows = store.db.fetch_all(_LIVE_AUTHORITIES, (states,))
        authorities = frozenset(Identifier(bytes(row[0])) for row in rows)
    leases: list[Lease] = []
    for authority in sorted(authorities, key=lambda a: a.digest):
        leases += store.leases_with_member(member, LIVE_STATES, authority)
    return leases
