"""Review 73i (area: listed): attacks on review 73e's rule (tickets4 1) that a row the
rotation's ticket lists is verified whatever its date (its key's retirement time not checked:
`verify_envelope(retired=False)`, troth.trace.outbox_tickets.verify_queued), and that the
rotation verifies the rows it signs again under the history before it, that did not work,
kept as passing tests. The thief holds the key the rotation retires (K0) and writes node.db,
before the rotation (K0 still current) or after it (a copy of the vault from before)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest

from tests.support.traces import DAY
from tests.test_review71g_outbox2 import Rotated, _appended
from tests.test_review71o_wave2e import planted
from tests.test_trace_service import NOW, F, tool
from troth.crypto import sha256
from troth.identity import Signer
from troth.trace.outbox_tickets import read_ticket
from troth.trace.signing import VerifiedRecord, open_envelope, resolve_key, sign_record

_YEAR_2100: Final = 4_102_444_800
_K0_MADE: Final = NOW - 1000  # Rotated's K0 attestation: NOW - 1000 .. NOW - 1000 + 30 days
_K0_EXPIRES: Final = _K0_MADE + 30 * DAY


def signed_at(signer: Signer, time: int) -> VerifiedRecord:
    """A thief's record (`wire_transfer`) signed by `signer` (a key it holds) dated `time`,
    whatever the key's window says: the thief's own code checks no time."""
    epoch = resolve_key(signer.identity, signer.attestation)
    unbounded = dataclasses.replace(
        epoch,
        attested_from=0,
        expires_at=2**62,
        primary_valid_from=0,
        primary_valid_until=2**62,
        retired_at=None,
    )
    content = tool("wire_transfer", n=time)
    return sign_record(
        signer, content, seq=0, prev=None, time=time, epoch=unbounded, random=os.urandom
    )


class PlantedBefore(Rotated):
    """Rotated, where the thief holding K0 (still current) plants its records signed by K0,
    dated `dates` (its `made` column each the same), just before the rotation, which is
    `compromised` or not."""

    def __init__(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        dates: Sequence[int],
        *,
        queued: int,
        bound: int,
        compromised: bool = False,
    ) -> None:
        self.dates, self.compromised = dates, compromised
        self.forged: list[VerifiedRecord] = []
        super().__init__(tmp_path, monkeypatch, queued=queued, bound=bound)

    def rotate(self, at: int, *, compromised: bool = False) -> int:
        if not self.forged:
            self.forged = [signed_at(self.stolen, date) for date in self.dates]
            with self.outbox.store.transaction():
                for forged in self.forged:
                    self.outbox.store.insert(
                        self.agent.identifier.digest,
                        forged,
                        made=forged.record.time,
                        chain=None,
                        stale=True,
                    )
            compromised = self.compromised
        return super().rotate(at, compromised=compromised)

    def listed(self) -> bool:
        """Whether the rotation's ticket lists every planted record."""
        hashes = read_ticket(self.db, self.agent.identity).hashes
        return all(sha256(forged.envelope) in hashes for forged in self.forged)


def sent_dated(rotated: Rotated, now: int = NOW) -> dict[str, int]:
    """Every queued record sent at `now` (answered appended): its id, and the time it bears
    as sent (each checked signed by the current change's key)."""
    identity = rotated.agent.identity
    sent: dict[str, int] = {}
    while (batch := rotated.outbox.next_batch(now)) is not None:
        keys = {resolve_key(identity, a).keyid: a for a in batch.submission.attestations}
        for record in batch.submission.records:
            held = open_envelope(record.envelope)[0]
            assert resolve_key(identity, keys[held.key]).is_current
            sent[held.id] = held.time
        rotated.outbox.answered(_appended(len(batch.items)), now=now)
    return sent


_PLACES: Final = {"in-the-rotation": 0, "listed": 1}
"""How many of the agent's rows are queued before the planted ones: none, with the bound at
as many as are planted (each signed again in the rotation's transaction), or one, with the
bound at one (each planted row listed)."""


def planted_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, place: str, dates: Sequence[int]
) -> PlantedBefore:
    queued = _PLACES[place]
    bound = 1 if queued else len(dates)
    return PlantedBefore(tmp_path, monkeypatch, dates, queued=queued, bound=bound)


@pytest.mark.parametrize("place", list(_PLACES))
def test_a_thiefs_row_dated_ahead_planted_before_a_routine_rotation_gains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, place: str
) -> None:
    """Tried (1: a row of K0 dated a day after the rotation, planted before it by the thief
    holding K0, the honest rotation then signing it again or listing it: laundered?). It is
    carried, as one it dates before the rotation always was (review 69a: a routine rotation
    signs again every row of the key it retires, the node cannot tell a thief's from its own;
    `--compromised` is for a stolen key): the date was the only difference, it bought nothing
    a date before the rotation did not, and it never reaches the log (each is sent dated when
    signed again, `resign_time`: no later than the send)."""
    rotated = planted_before(tmp_path, monkeypatch, place, [NOW + DAY, NOW - 600])
    try:
        assert rotated.listed() is (place == "listed")
        sent = sent_dated(rotated)
        assert set(sent) == {*rotated.ids, *(forged.record.id for forged in rotated.forged)}
        assert all(time <= NOW for time in sent.values())
        assert rotated.refused() == []
    finally:
        rotated.close()


def test_a_thiefs_row_dated_ahead_before_a_compromised_rotation_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (1: as above, the rotation `--compromised`): the rows of K0 a day ahead and
    before, the thief's and the agent's, are all set aside, none sent (review 69o: the rule
    for a stolen key is unchanged by 73e's)."""
    rotated = PlantedBefore(
        tmp_path, monkeypatch, [NOW + DAY, NOW - 600], queued=1, bound=1, compromised=True
    )
    try:
        assert sent_dated(rotated) == {}
        ids = [*rotated.ids, *(forged.record.id for forged in rotated.forged)]
        assert sorted(rotated.refused()) == sorted((i, F.ATTESTATION_STALE.value) for i in ids)
    finally:
        rotated.close()


def test_a_row_of_the_retired_key_dated_after_the_rotation_planted_after_it_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tried (1: a row planted after the rotation, dated after it, beside the agent's listed
    rows dated after it too): the thief holding K0 (a copy of the vault) plants its record
    dated NOW - 10 (the rotation at NOW - 50, within K0's window). No ticket lists it: the
    retirement time is checked, set aside KEY_RETIRED; the agent's rows (made while the
    clock ran a day ahead) go under K1."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3, made=NOW + DAY)
    try:
        forged = signed_at(rotated.stolen, NOW - 10)
        planted(rotated, forged)
        assert set(sent_dated(rotated)) == set(rotated.ids)
        assert rotated.refused() == [(forged.record.id, F.KEY_RETIRED.value)]
    finally:
        rotated.close()


@pytest.mark.parametrize("column", ["disclosures", "made-and-time"])
def test_a_listed_envelope_under_other_columns_is_only_the_agents_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, column: str
) -> None:
    """Tried (1: a row whose hash is a listed one's: the ticket hashes the envelope's bytes,
    in canonical form, the payload and K0's signature, nothing else of the row): the thief
    keeps a listed envelope (dated after the rotation) and changes the columns not hashed:
    its own record's disclosures (their salts and values of its choosing: they open none of
    the envelope's commitments, set aside DISCLOSURE_MISMATCH, no more than deleting it), or
    `made` and `time` at the year 2100 (the record is sent as the agent's, dated when signed
    again)."""
    rotated = Rotated(tmp_path, monkeypatch, queued=3, made=NOW + DAY)
    try:
        target = rotated.ids[-1]
        with rotated.db.transaction():
            if column == "disclosures":
                forged = signed_at(rotated.stolen, NOW + DAY)
                rotated.db.execute(
                    "UPDATE trace_outbox SET disclosures = ? WHERE record = ?",
                    (forged.stored_disclosures, target),
                )
            else:
                rotated.db.execute(
                    "UPDATE trace_outbox SET made = ?, time = ? WHERE record = ?",
                    (_YEAR_2100, _YEAR_2100, target),
                )
        sent = sent_dated(rotated)
        assert all(time <= NOW for time in sent.values())
        if column == "disclosures":
            assert set(sent) == set(rotated.ids[:-1])
            assert rotated.refused() == [(target, F.DISCLOSURE_MISMATCH.value)]
        else:
            assert set(sent) == set(rotated.ids)
            assert rotated.refused() == []
    finally:
        rotated.close()


@pytest.mark.parametrize("place", list(_PLACES))
def test_a_listed_row_outside_its_keys_window_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, place: str
) -> None:
    """Tried (2 and 3: what `retired=False` skips besides the retirement time; how far ahead
    a listed row may be dated): the thief holding K0 plants, before a routine rotation, rows
    of K0 dated before K0 was attested (past the 300 s of skew), at K0's attestation's expiry,
    in the year 2100, and the second before that expiry. The rotation lists them (hashed, not
    verified) or verifies them under the history before it: the first three fail K0's
    attestation window either way (ATTESTATION_INVALID, set aside); the last, within it, is
    sent, dated when signed again (no later than the send): a listed row is bounded by its
    key's attestation (30 days here), and its own date never reaches the log."""
    dates = [_K0_MADE - 400, _K0_EXPIRES, _YEAR_2100, _K0_EXPIRES - 1]
    rotated = planted_before(tmp_path, monkeypatch, place, dates)
    try:
        assert rotated.listed() is (place == "listed")
        *outside, inside = (forged.record.id for forged in rotated.forged)
        sent = sent_dated(rotated)
        assert set(sent) == {*rotated.ids, inside}
        assert all(time <= NOW for time in sent.values())
        assert sorted(rotated.refused()) == sorted(
            (i, F.ATTESTATION_INVALID.value) for i in outside
        )
    finally:
        rotated.close()
