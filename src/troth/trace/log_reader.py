"""The read side of a trace log (`troth.trace.log.TraceLog` inherits it): the records it
stores with their disclosures, each agent's chain head, the signer histories, key attestations
and delegation chains it keeps, and RFC 9162 inclusion and consistency proofs, each read from
the log's store (docs/traces.md). Nothing here writes: appending, checkpoints and redaction
are `troth.trace.log`'s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from troth import limits
from troth.errors import NotFound, StorageError
from troth.identity import Identifier
from troth.trace.log_rows import SIZE_SQL, agent_head, stored_int
from troth.trace.merkle import consistency_proof, inclusion_proof
from troth.trace.record import Disclosure
from troth.trace.record_decode import Holding
from troth.trace.store import TraceStore
from troth.trace.stored import (
    STORED_DIGEST_BYTES,
    STORED_DISCLOSURES_BYTES,
    StoredEntry,
    StoredRecord,
    SubtreeReader,
    decode_disclosures,
    stored_bytes,
    stored_column,
    stored_identifier,
    stored_text,
    stored_text_column,
)

__all__ = ["LogReader", "holding", "locate", "named_id"]

_ENVELOPE: Final = stored_column("envelope", limits.MAX_TRACE_ENVELOPE_BYTES)
_DISCLOSURES: Final = stored_column("disclosures", STORED_DISCLOSURES_BYTES)
_HISTORY: Final = stored_column("history", limits.MAX_IDENTITY_HISTORY_BYTES)
_ATTESTATION: Final = stored_column("attestation", limits.MAX_ATTESTATION_BYTES)
_CHAIN: Final = stored_column("chain", limits.MAX_CHAIN_BYTES)
_LEAF: Final = stored_column("leaf", STORED_DIGEST_BYTES)
_AGENT: Final = stored_column("agent", STORED_DIGEST_BYTES)
"""The columns of the log's rows a verifier reads, not fetched past what their decoders take
(review 69m, verify 1: a crafted row of a few GB was fetched whole before it was refused)."""

_SIZE: Final = " + ".join(
    f"(CASE WHEN typeof({c}) = 'blob' THEN length({c}) ELSE 0 END)"
    for c in ("envelope", "disclosures")
)
"""A row's envelope and disclosures' size from its header (a column of another type, not
fetched, counts 0: `length()` of TEXT reads it: review 69s, wave2 1)."""

_RECORD_ID: Final = stored_text_column("record_id", 64)
"""A record id (32 hex digits) as `stored` reads it (review 69s, wave2 1): MALFORMED past 64
characters or with a NUL, not fetched."""
_IDENTIFIER: Final = stored_column("identifier", STORED_DIGEST_BYTES)
_DIGEST: Final = stored_column("digest", STORED_DIGEST_BYTES)
_KEYID: Final = stored_text_column("keyid", STORED_DIGEST_BYTES)
"""The keys of the rows kept beside the records, as `histories`, `chains` and `attestations`
read them: not fetched past their bounds (an 8 MiB one was: review 69x, wave4c 4)."""

_NAMED_ID_CHARS: Final = 64
"""How much of a record id given an error names (an id is 32 hex digits)."""


def named_id(record_id: str) -> str:
    """`record_id` as an error names it: whole (repr) when of an id's length or a little more,
    else its first characters and its length (review 60j: a 10 MB id given to `prove` came
    back whole in its NotFound)."""
    if len(record_id) <= _NAMED_ID_CHARS:
        return repr(record_id)
    return f"{record_id[:_NAMED_ID_CHARS]!r}... ({len(record_id)} characters)"


class LogReader:
    """What is read from a trace log's store (`store`): records, proofs, what the log keeps."""

    store: TraceStore

    # -- reading -------------------------------------------------------------------------------

    def head(self, agent: Identifier) -> tuple[int, bytes, int] | None:
        """The (seq, record hash, time) of `agent`'s latest record in the log (TraceError for a
        damaged row, not fetched past its bounds: review 70i, leftovers 2)."""
        head = agent_head(self.store.connection(), agent.digest)
        return None if head is None else head[:3]

    def size(self) -> int:
        row = self.store.fetch_one(SIZE_SQL)
        return stored_int(row[0], row[1], "size") or 0

    def find(self, record_id: str, agent: Identifier | None = None) -> StoredRecord:
        """The stored record `record_id` of `agent` (record ids are unique per agent:
        docs/formats.md, "Trace records"). Without `agent`, the one record under that id;
        NotFound when there is none, or when several agents have a record under it (name
        the agent)."""
        index = locate(self.store.connection(), record_id, agent)
        if index is None:
            raise NotFound(f"no record {named_id(record_id)} in the log")
        row = self.store.fetch_one(
            f"SELECT idx, {_ENVELOPE}, {_LEAF} FROM leaves "  # noqa: S608
            "WHERE idx = ?",
            (index,),
        )
        if row is None:
            raise NotFound(f"no record {named_id(record_id)} in the log")
        return _stored_record(row)

    def holding(self, signer: Identifier, record_id: str) -> Holding:
        """Where the records under `record_id` are in the log, as a version 1 link signed by
        `signer` sees them (`troth.trace.record_decode.parent_record`'s `holders`)."""
        return holding(self.store.connection(), signer, record_id)

    def agents_of(self, record_id: str) -> list[Identifier]:
        """The agents that have a record under `record_id` in the log (ids are per agent)."""
        sql = f"SELECT {_AGENT} FROM leaves WHERE record_id = ?"  # noqa: S608
        return [
            stored_identifier(kind, agent, "record agent")
            for kind, agent in self.store.fetch_all(sql, (record_id,))
        ]

    def records(
        self, start: int = 0, stop: int | None = None, *, chunk: int = 4096
    ) -> Iterator[StoredRecord]:
        """The stored records from index `start` (to `stop`), in index order."""
        position = start
        while stop is None or position < stop:
            end = position + chunk if stop is None else min(stop, position + chunk)
            rows = self.store.fetch_all(
                f"SELECT idx, {_ENVELOPE}, {_LEAF} FROM leaves "  # noqa: S608
                "WHERE idx >= ? AND idx < ? ORDER BY idx",
                (position, end),
            )
            for row in rows:
                yield _stored_record(row)
            if len(rows) < end - position:
                return
            position = end

    def stored(self, start: int = 0, *, chunk: int = 4096) -> Iterator[StoredEntry]:
        """Every stored record from index `start` (up to the last one stored when it is first
        asked for), in order, with its disclosures: `chunk` rows per read, fewer past
        MAX_TRACE_READ_BYTES of envelopes and disclosures (`_rows_within`; review 55e, reads 1),
        each read going on from the last index the previous one returned, so a crafted file's
        far index costs one read, not one per empty window before it (review 27t, verify 1). A
        column of another type than the schema's is TraceError MALFORMED at its record (verify
        2)."""
        last = self.store.fetch_one("SELECT max(idx) FROM leaves")[0]
        position = start
        sql = (
            f"SELECT idx, {_RECORD_ID}, {_ENVELOPE}, "  # noqa: S608
            f"{_LEAF}, {_DISCLOSURES}, "
            f"{_AGENT} FROM leaves "
            "WHERE idx >= ? AND idx <= ? ORDER BY idx LIMIT ?"
        )
        while last is not None and position <= last:
            within = self._rows_within(position, last, chunk)
            rows = self.store.fetch_all(sql, (position, last, within))
            for index, *columns in rows:
                id_kind, record_id, kind, envelope, leaf_kind, leaf, disclosed_kind, disclosed = (
                    columns[:8]
                )
                yield StoredEntry(
                    index,
                    stored_text(id_kind, record_id, "record id", index=index),
                    stored_bytes(kind, envelope, "envelope", index=index),
                    stored_bytes(leaf_kind, leaf, "leaf", index=index),
                    None
                    if disclosed_kind == "null"
                    else stored_bytes(disclosed_kind, disclosed, "disclosures", index=index),
                    stored_bytes(columns[8], columns[9], "record agent", index=index),
                )
            if len(rows) < within or not rows:
                return
            position = rows[-1][0] + 1

    def _rows_within(self, position: int, last: int, chunk: int) -> int:
        """How many of the (at most `chunk`) rows from index `position` to `last` one read of
        `stored` takes: those whose envelopes and disclosures together stay within
        MAX_TRACE_READ_BYTES, at least one (their sizes read from the rows' headers, not their
        bytes: `length` of a BLOB reads no overflow page). A read of the largest records holds
        a few of them, not `chunk` (review 55e, reads 1)."""
        sizes = self.store.fetch_all(
            f"SELECT {_SIZE} FROM leaves "  # noqa: S608
            "WHERE idx >= ? AND idx <= ? ORDER BY idx LIMIT ?",
            (position, last, chunk),
        )
        total = 0
        for count, (size,) in enumerate(sizes):
            total += size if type(size) is int else 0
            if total > limits.MAX_TRACE_READ_BYTES:
                return max(count, 1)
        return max(len(sizes), 1)

    def histories(self) -> dict[Identifier, bytes]:
        """Every signer's newest history the log keeps (TraceError MALFORMED naming a row of
        another type, or an identifier that is not 32 bytes: review 27t, verify 3)."""
        sql = (
            f"SELECT {_IDENTIFIER}, {_HISTORY} "  # noqa: S608
            "FROM histories"
        )
        return {
            stored_identifier(id_kind, identifier, "history identifier"): stored_bytes(
                kind, history, "history"
            )
            for id_kind, identifier, kind, history in self.store.fetch_all(sql)
        }

    def attestations(self) -> dict[str, bytes]:
        """Every signing-key attestation the log keeps, by keyid (TraceError MALFORMED as
        `histories`)."""
        sql = (
            f"SELECT {_KEYID}, {_ATTESTATION} "  # noqa: S608
            "FROM attestations"
        )
        return {
            stored_text(id_kind, keyid, "keyid"): stored_bytes(kind, attestation, "attestation")
            for id_kind, keyid, kind, attestation in self.store.fetch_all(sql)
        }

    def history(self, identifier: Identifier) -> bytes | None:
        """`identifier`'s newest history the log keeps (None: none), one row read (what a
        bundle of one record needs: `histories` reads every signer's)."""
        row = self.store.fetch_one(
            f"SELECT {_HISTORY} FROM histories WHERE identifier = ?",  # noqa: S608
            (identifier.digest,),
        )
        return None if row is None else stored_bytes(row[0], row[1], "history")

    def attestation(self, keyid: str) -> bytes | None:
        """The signing-key attestation `keyid` names (None: the log keeps none)."""
        row = self.store.fetch_one(
            f"SELECT {_ATTESTATION} FROM attestations WHERE keyid = ?",  # noqa: S608
            (keyid,),
        )
        return None if row is None else stored_bytes(row[0], row[1], "attestation")

    def attestations_of(self, identifier: Identifier) -> list[bytes]:
        """The signing-key attestations the log keeps filed under `identifier`."""
        sql = f"SELECT {_ATTESTATION} FROM attestations WHERE identifier = ?"  # noqa: S608
        return [
            stored_bytes(kind, attestation, "attestation")
            for kind, attestation in self.store.fetch_all(sql, (identifier.digest,))
        ]

    def chains(self) -> dict[bytes, bytes]:
        """Every delegation chain the log keeps, by digest (TraceError MALFORMED as
        `histories`)."""
        sql = f"SELECT {_DIGEST}, {_CHAIN} FROM chains"  # noqa: S608
        return {
            stored_bytes(digest_kind, digest, "chain digest"): stored_bytes(kind, chain, "chain")
            for digest_kind, digest, kind, chain in self.store.fetch_all(sql)
        }

    def chain(self, digest: bytes) -> bytes | None:
        sql = f"SELECT {_CHAIN} FROM chains WHERE digest = ?"  # noqa: S608
        row = self.store.fetch_one(sql, (digest,))
        return None if row is None else stored_bytes(row[0], row[1], "chain")

    def disclosures(self, record_id: str, agent: Identifier | None = None) -> dict[str, Disclosure]:
        """The disclosures kept with record `record_id` of `agent` (as `find` names it)."""
        index = locate(self.store.connection(), record_id, agent)
        row = self.store.fetch_one(
            f"SELECT {_DISCLOSURES} FROM leaves WHERE idx = ?",  # noqa: S608
            (index,),
        )
        if row is None or row[0] == "null":
            return {}
        return decode_disclosures(stored_bytes(row[0], row[1], "disclosures"))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The proof that record `index` is in the tree of the first `size` records."""
        # stored subtrees never change once written: no snapshot needed below the size
        with self.store.failures():
            return inclusion_proof(index, size, SubtreeReader(self.store.connection()).perfect)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        """The proof that the tree of `size1` records is a prefix of the one of `size2`."""
        with self.store.failures():
            return consistency_proof(size1, size2, SubtreeReader(self.store.connection()).perfect)


def locate(conn: sqlite3.Connection, record_id: str, agent: Identifier | None) -> int | None:
    """The log index of record `record_id` of `agent` (None: the log holds none). Without
    `agent`, of the one record under that id; NotFound when several agents have one (ids are
    unique per agent only: which one is meant is for the caller to say)."""
    try:
        if agent is not None:
            sql = "SELECT idx FROM leaves WHERE record_id = ? AND agent = ?"
            row = conn.execute(sql, (record_id, agent.digest)).fetchone()
            return None if row is None else int(row[0])
        sql = "SELECT idx FROM leaves WHERE record_id = ? LIMIT 2"
        found = conn.execute(sql, (record_id,)).fetchall()
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc
    if len(found) > 1:
        raise NotFound(
            f"several agents have a record {named_id(record_id)} in the log: name the agent"
        )
    return int(found[0][0]) if found else None


_ANY_TWO = (
    "SELECT idx, agent FROM leaves WHERE record_id = ? AND typeof(agent) = 'blob' "
    "AND length(agent) = 32 LIMIT 2"
)
_FIRST_TWO = _ANY_TWO.replace(" LIMIT 2", " ORDER BY idx LIMIT 2")


def holding(
    conn: sqlite3.Connection,
    signer: Identifier,
    record_id: str,
    *,
    also: Iterable[tuple[int, bytes]] = (),
    earliest: bool = True,
) -> Holding:
    """Where the log's records under `record_id` are, as a version 1 link signed by `signer`
    sees them (`troth.trace.record_decode.parent_record`'s `holders`), with `also` (index,
    agent digest) pairs not yet stored (a batch being admitted). `earliest=False` (at append,
    where every record the log holds is before the one admitted, so any two agents' records
    decide as the earliest two would): two of them, read without ordering the id's records,
    one indexed look-up however many agents hold the id. Rows of no agent (a schema 3 log's)
    are left out: the verifier reports them."""
    try:
        mine = conn.execute(
            "SELECT idx FROM leaves WHERE record_id = ? AND agent = ?", (record_id, signer.digest)
        ).fetchone()
        rows = conn.execute(_FIRST_TWO if earliest else _ANY_TWO, (record_id,)).fetchall()
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc
    found: dict[bytes, int] = {}  # per agent its first index (`also` may repeat a row)
    for at, agent in [*rows, *also]:
        if at < found.get(bytes(agent), at + 1):
            found[bytes(agent)] = at
    first = sorted(((at, agent) for agent, at in found.items()), key=lambda pair: pair[0])[:2]
    placed = [(at, Identifier(agent)) for at, agent in first]
    own = None if mine is None else int(mine[0])
    if signer.digest in found and (own is None or found[signer.digest] < own):
        own = found[signer.digest]  # in `also` (a batch: ids are per agent, so not both)
    return Holding(
        own,
        placed[0] if placed else None,
        placed[1] if len(placed) > 1 else None,
    )


def _stored_record(row: Sequence[Any]) -> StoredRecord:
    """A (idx, envelope, leaf) row read as `stored_bytes` reads BLOBs, as a StoredRecord."""
    index = row[0]
    return StoredRecord(
        index,
        stored_bytes(row[1], row[2], "envelope", index=index),
        stored_bytes(row[3], row[4], "leaf", index=index),
    )
