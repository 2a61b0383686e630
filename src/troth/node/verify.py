"""Verifying a credential chain or a troth W3C VC on this machine (what `troth credential
verify` does, as one library call): the trust decision (the issuer must be a trust anchor),
the choice of revocation feeds (feed files and/or a local authority's own feed, each verified
and fresh), and the node's store of histories (store-or-extend), with the staleness and skew
of troth.node.trust.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from troth import limits
from troth.authority import Authority
from troth.channel.verification import standing_feeds
from troth.credentials import (
    ChainVerifier,
    TrustPolicy,
    VerifiedCredential,
    VerifiedFeed,
    chain_actor,
    feed_authority,
    read_page_sequence,
    verify_page,
    verify_pages,
)
from troth.credentials.revocation_held import feed_checkpoints, newest_copy
from troth.credentials.vc import VerifiedVC, vc_issuer, verify_troth_vc
from troth.credentials.verify import check_feed_age
from troth.credentials.wallet import next_page
from troth.encoding.ijson import load_json
from troth.errors import (
    CredentialError,
    CredentialFailure,
    DecodeError,
    IdentityError,
    IdentityFailure,
)
from troth.identity import (
    Checkpoints,
    Identifier,
    UnverifiedHistory,
    VerifiedIdentity,
    verify_history,
)
from troth.identity.known import Binds
from troth.names import check_name
from troth.node.copies import with_standing
from troth.node.node import Node, open_node
from troth.node.trust import FEED_STALENESS, Known, store_or_extend, supersedes_extension

__all__ = [
    "Progress",
    "Sources",
    "authority_pages",
    "chain_file",
    "check_stored_copies",
    "named_file_hint",
    "read_feed_file",
    "select_feeds",
    "trace_checkpoints",
    "trace_issuers",
    "trace_known",
    "verify_chain",
    "verify_vc",
]

_F = CredentialFailure


Progress = Callable[[int, int], None]
"""Told (entries verified, entries in the feed) after each page of a feed that spans several."""


def chain_file(ref: str) -> Path | None:
    """Whether `ref` (`troth credential show REF`) names a chain file: its path when `ref`
    cannot name an identity (a path separator in it, or neither a valid name nor identifier
    text: `./customer`, `-` for stdin, `chain file`), else None:
    `ref` names an identity, whatever file of that name the working directory holds (anyone
    who can write there could plant another chain under an identity's name: review 36b,
    show 1; `--file FILE` names a file whatever it looks like)."""
    separators = [sep for sep in (os.sep, os.altsep) if sep is not None]
    if any(sep in ref for sep in separators) or not (
        Identifier.looks_like(ref) or _valid_name(ref)
    ):
        return Path(ref)
    return None


def named_file_hint(ref: str) -> str:
    """What to say when identity `ref` is not found but a file of that name exists: how to
    give it as a file (review 36b, show 1), else nothing."""
    if chain_file(ref) is None and Path(ref).exists():
        return f"; for the file {ref!r}, give ./{ref} or --file {ref}"
    return ""


def _valid_name(text: str) -> bool:
    try:
        check_name(text)
    except ValueError:
        return False
    return True


def authority_pages(
    authority: Authority, now: int, progress: Progress | None = None
) -> Iterator[tuple[bytes, VerifiedFeed]]:
    """A local authority's whole feed, page by page, each page verified as it comes."""
    feed: VerifiedFeed | None = None
    since: int | None = 0
    while since is not None:
        page = authority.feed(now=now, since=since)
        feed = verify_page(
            page,
            authority=authority.identifier,
            now=now,
            previous=feed,
            checkpoints=authority.identities.attested_by_store,
        )
        yield page, feed
        since = next_page(feed, since)
        if progress is not None and (since is not None or feed.count > len(feed.new_entries)):
            progress(feed.count, feed.latest)


def read_feed_file(
    path: str,
    anchors: frozenset[Identifier],
    now: int,
    known: Known | None = None,
    checkpoints: Checkpoints | None = None,
) -> VerifiedFeed:
    """Verify a feed file (a CBOR sequence of pages) of a trusted authority, one page at a
    time (CredentialError FEED_INVALID otherwise)."""
    with open(path, "rb") as stream:
        try:
            pages = read_page_sequence(stream.read)
            first = next(pages, None)
            if first is None:
                raise CredentialError(_F.FEED_INVALID, f"{path} holds no page")
            claimed = feed_authority(first)
            if claimed not in anchors:
                raise CredentialError(
                    _F.FEED_INVALID, f"feed of {claimed}, not a trusted authority"
                )
            return verify_pages(
                itertools.chain([first], pages),
                authority=claimed,
                now=now,
                known=known,
                checkpoints=checkpoints,
            )
        except DecodeError as exc:
            raise CredentialError(_F.FEED_INVALID, str(exc)) from None


@contextlib.contextmanager
def _named_authority(home: Path, name: str | None) -> Iterator[Authority | None]:
    if name is None:
        yield None
        return
    with open_node(name, home=home) as node:
        yield node.authority()


def select_feeds(
    *,
    feed_files: Sequence[str],
    authority: Authority | None,
    anchors: frozenset[Identifier],
    now: int,
    max_age: int = FEED_STALENESS,
    known: Known | None = None,
    progress: Progress | None = None,
    checkpoints: Checkpoints | None = None,
) -> dict[Identifier, VerifiedFeed]:
    """The fresh feeds of trusted authorities, from feed files and/or a local authority
    (`checkpoints`: the caller's word on a long-lived authority's checkpointed history); of
    an authority given twice, the copy with the most entries, then the latest issued."""
    check_feed_age(max_age)
    feeds = [read_feed_file(path, anchors, now, known, checkpoints) for path in feed_files]
    if authority is not None:
        if authority.identifier not in anchors:
            raise CredentialError(
                _F.FEED_INVALID, f"feed of {authority.identifier}, not a trusted authority"
            )
        *_, (_, feed) = authority_pages(authority, now, progress)
        feeds.append(feed)
    for feed in feeds:
        feed.check_fresh(now=now, max_staleness=max_age)
    # of each authority, its newest copy, a fork refused (review 53e, feeds 1; 53j, feeds 1)
    copies: dict[Identifier, list[VerifiedFeed]] = {}
    for feed in feeds:
        copies.setdefault(feed.authority, []).append(feed)
    newest = {authority: newest_copy(held) for authority, held in copies.items()}
    return {authority: feed for authority, feed in newest.items() if feed is not None}


@dataclass(frozen=True, slots=True)
class Sources:
    """What a verification trusts (`anchors`) and where its feeds come from: feed files and/or
    the authority hosted by node `authority_name` in `home`, each at most `max_feed_age` old."""

    anchors: frozenset[Identifier]
    home: Path
    feed_files: Sequence[str] = ()
    authority_name: str | None = None
    max_feed_age: int = FEED_STALENESS
    progress: Progress | None = None
    """Told how far reading the local authority's feed got (a long feed takes seconds)."""

    def __post_init__(self) -> None:
        check_feed_age(self.max_feed_age)  # 1 s to MAX_FEED_STALENESS_SECONDS (review 36b)


def _stored_presenter(node: Node, actor: Identifier, now: int) -> Identifier | VerifiedIdentity:
    """The actor's history as the node stores it (so the feed can tell whether it is
    superseded), else only its identifier. A copy from a checkpoint is verified with the
    node's store attesting its first change (the copy itself: what the node knows of her), as
    the node's own lookups do, and judged by the root's feed's supersession alone (not
    `binds`: the presenter did not show it); verified with none it failed, and the feed's
    supersession of it went unchecked (review 40a, node 1)."""
    stored = node.identities.store.get_history(actor.digest)
    if stored is None:
        return actor
    try:
        return verify_history(stored[0], now=now, checkpoints=node.identities.attested_by_store)
    except IdentityError:
        return actor


def verify_chain(
    data: bytes,
    sources: Sources,
    *,
    now: int,
    presenter: Identifier | None = None,
    node: Node | None = None,
) -> VerifiedCredential:
    """Verify chain bytes for `sources.anchors` against their feeds. With `node`, issuer
    histories are checked against its store as at a handshake (a copy from a checkpoint binds
    a full one only when an authority attesting it has standing over it, the chain's root
    among them: docs/formats.md, "A stored copy from a checkpoint") and stored once the chain
    verified (a copy that does not bind them replaced: review 30a, verify 1) when the node
    trusts or hosts its root (else none is stored: review 32a, verify 1; nor the root's own
    history its feed file carries: review 33a, verify 1), and the presenter's stored history
    is checked against the feed. The presenter defaults to the chain's last subject."""
    known = None if node is None else _feed_known(node, now)
    with _named_authority(sources.home, sources.authority_name) as authority:
        feeds = select_feeds(
            feed_files=sources.feed_files,
            authority=authority,
            anchors=sources.anchors,
            now=now,
            max_age=sources.max_feed_age,
            known=known,
            progress=sources.progress,
            checkpoints=None if node is None else node.identities.attested_by_store,
        )
    actor = presenter or chain_actor(data)
    # the feed age the feeds were chosen by (a VC's alike): the default 300 s refused a chain
    # whose feed `--max-feed-age` accepted (review 53e, feeds 2)
    policy = TrustPolicy(sources.anchors, max_feed_staleness=sources.max_feed_age)
    if node is None:
        return ChainVerifier(policy).verify(data, presenter=actor, feeds=feeds, now=now)
    stored = _stored_presenter(node, actor, now)
    # a stored copy from a checkpoint is not shown by the presenter: the chain's root need not
    # name its changes (review 23a's rule for a shown history), only its supersession counts
    whole = isinstance(stored, Identifier) or stored.first_index == 0
    verified = ChainVerifier(policy, known_in=_issuer_check(node)).verify(
        data, presenter=stored if whole else actor, feeds=feeds, now=now
    )
    newer = _held_newer(node, feeds, verified.authority)
    if newer is not None:  # an older copy handed in hides none of its revocations (58e, feeds 1)
        revoked = verified.revoked_link_in(newer)
        if revoked is not None:
            raise CredentialError(_F.REVOKED, _held_says(node, newer), revoked)
        verified.current_in(newer)
    if not isinstance(stored, Identifier) and not whole:
        feeds[verified.authority].check_current(stored)  # review 40a, node 1
        if newer is not None:
            newer.check_current(stored)
    if not _anchor_here(node, verified.authority):
        # a root the node does not trust stores nothing here: its checkpoint made up a copy,
        # its chain carried a thief's fork (review 32a, verify 1; as at a handshake, where
        # such a chain is dropped)
        return verified
    held = [*node.wallet.held_feeds().values(), *feeds.values()]
    try:
        for issuer in verified.issuers:
            if supersedes_extension(node.identities, issuer, held):
                continue  # a fork a trust anchor's feed names not the owner's (review 57w,
                # verify 1: judged by the feeds given alone, it was stored over the copy)
            # a copy that does not bind it (the root has standing) is replaced now
            node.identities.observe(issuer, binds=_binds(node, issuer, verified.authority))
    except IdentityError as exc:  # another process stored another copy meanwhile
        raise CredentialError(_F.ISSUER_INVALID, str(exc)) from None
    return verified


def _held_newer(
    node: Node, feeds: Mapping[Identifier, VerifiedFeed], authority: Identifier
) -> VerifiedFeed | None:
    """The feed `node` holds of `authority` when it holds entries the copy given in `feeds`
    does not (more, or others: a fork): a copy signed before a revocation, still within the
    feed age, was handed in again (review 58e, feeds 1: judged by the copy given alone, the
    revoked link verified on a node whose held feed revoked it). A feed only grows and a
    revocation stands, so the held one judges too, fresh or not."""
    given = feeds.get(authority)
    held = node.wallet.held_feed(authority)
    if given is None or held is None:
        return None
    if held.count <= given.count and held.agrees_with(given):
        return None  # the copy given holds every entry the node holds
    return held


def _held_says(node: Node, held: VerifiedFeed) -> str:
    return (
        f"in the feed {node.name} holds ({held.count} entries), which the copy given does not "
        "hold: a copy signed before the revocation was given"
    )


def _feed_known(node: Node, now: int) -> Known:
    """A feed file's authority history at `node`: stored (store-or-extend) when the node trusts
    or hosts that authority; else only checked against the stored copy, storing nothing: an
    ad-hoc `--trust` root is no anchor of the node, and a thief's fork of its history (a
    stolen pre-rotation key) stored here would refuse its own (review 33a, verify 1; at a
    handshake such a root's chain is dropped)."""
    store = store_or_extend(node.identities, now)

    def known(identity: VerifiedIdentity) -> None:
        if _anchor_here(node, identity.identifier):
            store(identity)
        else:
            node.identities.check_known(identity)

    return known


def _issuer_check(node: Node) -> Callable[[VerifiedIdentity, Identifier], None]:
    """The store-or-extend check of a chain's issuer history at `node` (stores nothing), the
    chain's root having standing over it, as at a handshake (`NodeTrust._issuer_known`)."""

    def check(identity: VerifiedIdentity, root: Identifier) -> None:
        binds = functools.partial(_binds, node, identity, root)
        with_standing(node.identities.check_known, identity, binds)

    return check


def check_stored_copies(
    node: Node, verified: VerifiedCredential, presenter: VerifiedIdentity | None = None
) -> None:
    """Raise CredentialError unless each issuer history `verified` carries (ISSUER_INVALID, with
    the link) and the presenter's history shown (WRONG_SUBJECT) passes `node`'s stored copy as
    `verify_chain` with the node's store judges them (`_issuer_check`): a `troth.Verifier` fed
    by the node judged them by the feeds alone, and took a delegation signed under a
    delegator's history older than the copy the node stored since, which the node's decisions
    and `troth credential verify` refuse (review 75f, delegation 2: a delegate is no member,
    so no feed names its rotation)."""
    check = _issuer_check(node)
    for index, issuer in enumerate(verified.issuers):
        try:
            check(issuer, verified.authority)
        except IdentityError as exc:
            raise CredentialError(_F.ISSUER_INVALID, str(exc), index) from None
    if presenter is not None:
        try:
            check(presenter, verified.authority)
        except IdentityError as exc:
            raise CredentialError(_F.WRONG_SUBJECT, f"the presenter's history: {exc}") from None


def _binds(node: Node, issuer: VerifiedIdentity, root: Identifier) -> Binds | None:
    """Which stored copies from a checkpoint bind a chain's `issuer` history: the node's rule,
    the chain's `root` having standing over it, when `node` trusts that root; else every copy
    (None). `--trust` takes any identifier, the anchors of one verification, and a chain whose
    root the node does not trust grants nothing at a handshake (it is dropped): its root's word
    lifts no stored copy nor replaces one (review 31a, verify 1). The authority the node
    hosts is its anchor too (as for its policies)."""
    if not _anchor_here(node, root):
        return None
    return node.binds_over(issuer, {root})


def _anchor_here(node: Node, root: Identifier) -> bool:
    """Whether `node` trusts `root` or hosts it (its anchors, as for its policies)."""
    if root in node.wallet.trusted():
        return True
    hosted = node.hosted_authority()
    return hosted is not None and hosted.identifier == root


def verify_vc(
    data: bytes,
    sources: Sources,
    *,
    now: int,
    issuer_history: bytes | None = None,
    node: Node | None = None,
) -> VerifiedVC:
    """Verify a troth VC: its issuer must be one of `sources.anchors`; proofs, window and
    revocation status against the issuer's feed, like a chain. The issuer's history comes from
    `issuer_history`, else from the local authority. With `node`, that history and the feed
    files' are checked against its store as a chain's are (`verify_chain`: stored when the
    node trusts or hosts the issuer, else only checked), so a node that stored the issuer's
    rotation refuses a VC made with its retired key, and a feed that key signed (review 48j,
    delegation 5); an issuer history from a checkpoint is stored only once the VC verified
    (review 63l, identity 1). CredentialError when it is not valid; ValueError when no
    issuer history is given."""
    policy = TrustPolicy(sources.anchors, max_feed_staleness=sources.max_feed_age)
    known = None if node is None else _feed_known(node, now)
    try:
        document = load_json(data, max_bytes=limits.MAX_VC_BYTES, what="VC")
    except DecodeError as exc:
        raise CredentialError(_F.MALFORMED, str(exc)) from None
    issuer = vc_issuer(document)
    if issuer not in policy.anchors:
        raise CredentialError(_F.UNTRUSTED_ISSUER, str(issuer))
    with _named_authority(sources.home, sources.authority_name) as authority:
        if issuer_history is None:
            if authority is None:
                raise ValueError(
                    "a VC needs its issuer's history: --issuer-history FILE or --authority NAME"
                )
            issuer_history = authority.history()
        # a whole history is judged before the feeds; one from a checkpoint (an issuer past 64
        # changes) by the feeds' word, as a chain's issuer is (ChainVerifier): verified with
        # none, every VC of a long-lived authority was refused (review 63f, identity 1)
        whole = _whole(issuer_history)
        identity = _vc_issuer(issuer_history, now, known) if whole else None
        feeds = select_feeds(
            feed_files=sources.feed_files,
            authority=authority,
            anchors=policy.anchors,
            now=now,
            max_age=sources.max_feed_age,
            known=known,
            progress=sources.progress,
            checkpoints=None if node is None else node.identities.attested_by_store,
        )
    if identity is None:
        checkpoints = feed_checkpoints(feeds, now=now, max_staleness=sources.max_feed_age)
        # only checked against the stored copy until the VC verified: its checkpoint may be
        # another authority's word, which the issuer's own feed refuses (review 63l, identity 1)
        checked = None if node is None else node.identities.check_known
        identity = _vc_issuer(issuer_history, now, checked, checkpoints)
    verified = verify_troth_vc(document, policy=policy, issuer=identity, feeds=feeds, now=now)
    newer = None if node is None else _held_newer(node, feeds, issuer)
    if node is not None and newer is not None:  # as a chain's (review 58e, feeds 1)
        if verified.credential_hash in newer.revoked_credentials or any(
            newer.identity_revoked(who.digest) for who in (issuer, verified.subject)
        ):
            raise CredentialError(_F.REVOKED, _held_says(node, newer))
        newer.check_current(identity)
    if not whole and known is not None:  # stored now that its own feed bound it
        try:
            known(identity)
        except IdentityError as exc:  # another process stored another copy meanwhile
            raise CredentialError(_F.ISSUER_INVALID, str(exc)) from None
    return verified


def _whole(history: bytes) -> bool:
    """Whether `history` holds every change from the first (no checkpoint), or does not decode
    (then judged as it is: its verification names why)."""
    try:
        return UnverifiedHistory.decode(history).checkpoint is None
    except DecodeError:
        return True


def _vc_issuer(
    history: bytes, now: int, known: Known | None, checkpoints: Checkpoints | None = None
) -> VerifiedIdentity:
    """A VC's issuer history verified at `now` (`checkpoints`: the feeds' word on one from a
    checkpoint) and judged against the node's stored copy (`known`: a fork or a rollback of
    it, review 48j); CredentialError ISSUER_INVALID else."""
    try:
        identity = verify_history(history, now=now, checkpoints=checkpoints)
        if known is not None:
            known(identity)
    except IdentityError as exc:
        raise CredentialError(_F.ISSUER_INVALID, str(exc)) from None
    return identity


# -- a bare history (no chain): `troth identity verify --node`, `troth identity import` -------


def _standing(node: Node, identity: VerifiedIdentity) -> tuple[VerifiedFeed, ...]:
    """The feeds `node` holds whose word counts on `identity` shown with no chain."""
    trusted = node.wallet.trusted()
    feeds = node.wallet.held_feeds(trusted)
    return standing_feeds(identity.identifier, (), frozenset(trusted), feeds, vouched=frozenset())


def check_not_superseded(node: Node, identity: VerifiedIdentity) -> None:
    """Raise CredentialError SUPERSEDED when a feed `node` holds, whose word counts on a history
    shown with no chain, says `identity`'s history is superseded (a stolen backup's, after the
    owner's announced rotation: review 38d, verify 1 and 2). As a stranger on a channel is
    judged (docs/formats.md, "Whose word counts on an identity"): by every held feed, or a
    trusted authority's own history by its own feed; fresh or not (a feed only grows, and a
    supersession it held once stands). Library logic, not the CLI's (review 40a, verify 1)."""
    for feed in _standing(node, identity):
        feed.check_current(identity)


def superseded_reason(node: Node, identity: VerifiedIdentity) -> str | None:
    """Why a feed `node` holds says `identity`'s history is superseded (`check_not_superseded`'s
    refusal), else None. For a local identity: the node runs a copy older than the history
    its owner announced, or a fork of it (a restored node.db, a clone), and what it signs is
    refused wherever that feed is held (review 50g, local 1)."""
    try:
        check_not_superseded(node, identity)
    except CredentialError as exc:
        return str(exc)
    return None


def forked_by(node: Node, identity: VerifiedIdentity) -> tuple[list[Identifier], list[Identifier]]:
    """The authorities whose feed `node` holds names, at a change `identity`'s history holds,
    another change: each took another rotation of the identity (a fork, made with a copy of its
    keys: a clone's, or a thief's stolen backup, announced first), refuses this history and
    serves the other. Not an older copy (a restored node.db), which a rotation the node missed
    explains: this history holds the change and it is not the authority's (review 64s,
    rotation 1: the owner was told to use the node holding the current history, the thief's).
    Two lists: the authorities local identity `identity` holds a credential of (lost to each),
    and the others, co-trusted ones (the copy's holder enrolled it there): their word counts
    on the identity only where it is judged by their feed (shown with no chain, or with their
    chains), not on the chains of its own authorities (docs/formats.md, "Whose word counts on
    an identity"; review 65j, forked 2: the owner was told it was lost, and to enroll anew)."""
    credited = {Identifier(held.authority) for held in node.wallet.held(str(identity.identifier))}
    forked: tuple[list[Identifier], list[Identifier]] = ([], [])
    for feed in _standing(node, identity):
        named = feed.supersession(identity.identifier)
        if named is None:
            continue
        offset = named.changes - 1 - identity.first_index
        held = 0 <= offset < len(identity.changes)
        if held and identity.changes[offset].change_hash != named.change_hash:
            forked[feed.authority not in credited].append(feed.authority)
    return forked


def verify_bare_history(node: Node, data: bytes, *, now: int) -> VerifiedIdentity:
    """Verify history bytes `data` shown with no chain at `node` (what `troth identity verify
    --node` does, as one call): a checkpointed history attested by the node's copy or a fresh
    feed it holds, extending the stored copy as `import_bare_history` requires (review 30a,
    import 4), and superseded in no held feed whose word counts (`check_not_superseded`).
    A history that passes and extends a copy the node stores replaces it (store-or-extend):
    what the node verified protects it from then on, else a stale backup (the history before
    the rotation just verified) was valid at the same node right after (review 50g, verify
    1). The history of an identity of which no copy is stored is only checked: a check is no
    first sight (`troth identity import` is). Raises IdentityError or CredentialError."""
    checkpoints = node.wallet.checkpoints(
        now=now, max_staleness=limits.DEFAULT_FEED_STALENESS_SECONDS
    )
    identity = verify_history(data, now=now, checkpoints=checkpoints)
    binds = node.wallet.anchor_binds(identity)
    node.identities.check_known(identity, binds=binds)  # a fork is kept as evidence
    check_not_superseded(node, identity)  # review 38d, verify 1
    if node.identities.stored_changes(identity.identifier) is not None:
        node.identities.observe(identity, binds=binds)  # IdentityError: another's copy since
    return identity


def trace_known(node: Node) -> Callable[[VerifiedIdentity], None]:
    """The `known` of a trace verification at `node` (`troth trace verify`, its own log or a
    file): a signer's history that forks from the stored copy is refused, an older prefix of
    it passes (a record keeps the history its signer had: docs/formats.md, "Signatures outlive
    rotations"), and one that extends the stored copy and that no feed the node holds
    supersedes is stored over it, as `verify_bare_history` stores what it verified: else the
    node verified an agent's rotation in an export and imported (or admitted at a handshake)
    the stale backup, the retired key, right after (review 54i, identity 1). The history of
    an identity of which no copy is stored is only checked: a check is no first sight."""
    identities = node.identities

    def known(identity: VerifiedIdentity) -> None:
        identities.check_no_fork(identity)  # a fork is kept as evidence
        stored = identities.stored_changes(identity.identifier)
        if stored is None or identity.change_count <= stored:
            return  # the hot path: a copy it holds (or an older prefix), from the cache
        if superseded_reason(node, identity) is None:
            identities.observe(identity, binds=node.wallet.anchor_binds(identity))

    return known


def trace_checkpoints(node: Node, *, now: int) -> Checkpoints:
    """The `checkpoints` of a trace verification at `node` (`troth trace verify`, its own log
    or a file): its word on checkpointed histories at `now`, its stored copies and held feeds,
    as its trace log takes a chain's issuer histories at append (`open_node_log`) and its
    trace service a member's (review 56q, chains 1: judged by the stored copies alone, the
    node refused its own log, a chain its log took on a held feed's word)."""
    return node.wallet.checkpoints(now=now, max_staleness=limits.DEFAULT_FEED_STALENESS_SECONDS)


def trace_issuers(node: Node) -> Callable[[VerifiedIdentity, Identifier], None]:
    """The check of a chain's issuer histories at `node` for its trace log's append and a
    trace verification (`chain_signed.check_issuers`): the check a handshake makes
    (`_issuer_check`: store-or-extend against the stored copy, the chain's root having
    standing over a copy from a checkpoint; stores nothing), an older prefix of the stored
    copy passing, as a signer's does (`trace_known`: a chain made before its issuer rotated
    keeps the history it had). On the feeds' word alone (`trace_checkpoints`) a trusted
    authority named its own key a "change" of another's identity, the node's own, and a chain
    signed by it was appended and verified (review 56y, chains 2)."""
    check = _issuer_check(node)

    def issuers(identity: VerifiedIdentity, root: Identifier) -> None:
        try:
            check(identity, root)
        except IdentityError as exc:
            if exc.reason is not IdentityFailure.ROLLBACK:
                raise
            node.identities.check_no_fork(identity)  # an older prefix (or a gap: refused)

    return issuers


def import_bare_history(node: Node, data: bytes, *, now: int) -> VerifiedIdentity:
    """Store history bytes `data` at `node` (what `troth identity import` does, as one call): a
    known identity accepts only an extension of its stored copy, but for a trusted authority's
    full history over a copy only another authority's checkpoint ties to it (review 30a,
    import 1); a history a held feed supersedes is refused and nothing stored
    (`check_not_superseded`, review 38d, verify 2). Raises IdentityError or CredentialError."""
    binds = node.wallet.anchor_binds
    identity = node.identities.check_history(data, now=now, binds=binds)
    check_not_superseded(node, identity)
    return node.identities.import_history(identity, now=now, binds=binds)
