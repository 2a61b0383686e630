"""Review 75e (traceverify): attacks on offline trace verification that did not work, kept as
passing tests. Each docstring says what was tried."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest

from tests.support.traces import NOW, Held, export_lines, open_log, re_signed, recorder, tool_call
from troth.clock import FixedClock
from troth.errors import TraceError, TraceFailure
from troth.trace.checkpoint import sign_checkpoint
from troth.trace.export import verify_export
from troth.trace.merkle import EMPTY_ROOT
from troth.trace.signing import resolve_key
from troth.trace.verify import LogVerifier, log_material, verify_records

_F = TraceFailure


@pytest.fixture(scope="module")
def two_logs(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Held, list[dict[str, object]], list[dict[str, object]]]:
    """Two logs of one collector's key (`owner`), each of two records of its own agent, as
    their exports' lines (parsed)."""
    tmp = tmp_path_factory.mktemp("75e")
    clock, owner = FixedClock(NOW), Held()
    found = []
    for name in ("a", "b"):
        log = open_log(tmp / f"{name}.db", clock, owner)
        steps = recorder(log, Held(), clock)
        steps.record(tool_call(f"{name}-1", args={"amount": 0.1, "tiny": 5e-324}))
        steps.record(tool_call(f"{name}-2", args={"huge": 1e21, "zero": -0.0}))
        log.checkpoint()
        found.append(export_lines(log))
        log.close()
    return owner, found[0], found[1]


def _refused(lines: list[bytes]) -> TraceError:
    with pytest.raises(TraceError) as caught:
        verify_export(lines)
    return caught.value


def test_an_honest_lines_floats_still_verify(
    two_logs: tuple[Held, list[dict[str, object]], list[dict[str, object]]],
) -> None:
    """Tried (75e traceverify 3's fix): refusing honest numbers: 0.1, 5e-324 (the smallest
    double), 1e21, -0.0 as an export writes them (RFC 8785's form) all verify; and spelled
    otherwise as the same double (`1E21`, `1000000000000000000000.0`)."""
    _, lines, _ = two_logs
    text = [json.dumps(line).encode() for line in lines]
    assert verify_export(text).records == 2
    respelled = [t.replace(b"1e+21", b"1E21") for t in text]
    assert respelled != text
    assert verify_export(respelled).records == 2
    decimal = [t.replace(b"1e+21", b"1000000000000000000000.0") for t in text]
    assert verify_export(decimal).records == 2


def test_splicing_two_logs_lines_is_refused(
    two_logs: tuple[Held, list[dict[str, object]], list[dict[str, object]]],
) -> None:
    """Tried: an export of one line of each of two logs of one collector (each under its own
    checkpoint): refused, `lines against different checkpoints`; re-signed as one tree (the
    collector's key), the two agents' records verify as the honest log of both they then are
    (each agent's chain whole): nothing to detect."""
    owner, a, b = two_logs
    spliced = [json.dumps(a[0]).encode(), json.dumps(b[1]).encode()]
    fault = _refused(spliced)
    assert fault.reason is _F.MALFORMED
    assert "different checkpoints" in (fault.detail or "")
    assert verify_export(re_signed([a[0], b[0], a[1], b[1]], owner, NOW + 1)).agents == 2
    # one agent's second record without its first, in a re-signed tree of every line: a
    # record deleted, the indices closed up
    fault = _refused(re_signed([a[0], b[1], a[1]], owner, NOW + 1))
    assert (fault.reason, fault.index) == (_F.CHAIN_BROKEN, 1)


def test_a_duplicated_line_or_member_is_refused(
    two_logs: tuple[Held, list[dict[str, object]], list[dict[str, object]]],
) -> None:
    """Tried: a line twice (REPLAYED); a line whose JSON holds a member twice, the later
    `index` naming another place (refused as no JSON: I-JSON, the line named by number); an
    index past 2**53 - 1 (no JSON number a double holds exactly: malformed)."""
    _, lines, _ = two_logs
    text = json.dumps(lines[0]).encode()
    assert _refused([text, text]).reason is _F.REPLAYED
    twice = text.replace(b'"index": 0', b'"index": 0, "index": 1')
    fault = _refused([twice])
    assert fault.reason is _F.MALFORMED
    assert "duplicate member" in (fault.detail or "")
    fault = _refused([text.replace(b'"index": 0', b'"index": 9007199254740992')])
    assert fault.reason is _F.MALFORMED


def test_a_line_against_a_checkpoint_of_no_records_or_one_too_few_is_refused(
    two_logs: tuple[Held, list[dict[str, object]], list[dict[str, object]]],
) -> None:
    """Tried: a line (index 0) under a checkpoint of no records the collector signed, with no
    proof; a line's proof shortened to a tree of one's (none) under the tree of two's
    checkpoint: no inclusion proof (PROOF_INVALID)."""
    owner, lines, _ = two_logs
    two = [json.loads(line) for line in re_signed(lines, owner, NOW + 1)]
    signer = owner.signer(NOW + 1)
    epoch = resolve_key(owner.identity, signer.attestation)
    empty = sign_checkpoint(signer, epoch, 0, EMPTY_ROOT, NOW + 1).note.decode()
    for checkpoint, proof in ((empty, []), (two[0]["checkpoint"], two[0]["proof"][:-1])):
        line = {**two[0], "checkpoint": checkpoint, "proof": proof}
        assert _refused([json.dumps(line).encode()]).reason is _F.PROOF_INVALID


def test_a_log_filing_another_attestation_under_a_records_keyid_is_refused(
    tmp_path: Path,
) -> None:
    """Tried: a crafted trace.db filing under a record's keyid another attestation of its agent
    (`verify_log` reads the keyid -> attestation rows as filed, never hashing them, where an
    export line's attestation must hash to the keyid): the agent's two keys (before and after
    a rotation) swapped, so the old key's record is judged by the new key's attestation and
    the other way round. Each names another key, whose signature it is not: bad signature at
    the first record. No honest node attests one key twice (a fresh key per attestation:
    `IdentityService._purpose_key`), so no other attestation of the same key exists."""
    clock, agent = FixedClock(NOW), Held()
    log = open_log(tmp_path / "log.db", clock)
    recorder(log, agent, clock).record(tool_call("before"))
    agent.rotate(NOW + 10)
    later = FixedClock(NOW + 20)
    recorder(log, agent, later).record(tool_call("after"))
    material = log_material(log)
    keyids = [json.loads(entry.envelope)["signatures"][0]["keyid"] for entry in log.stored()]
    assert len(set(keyids)) == 2
    old, new = keyids
    swapped = {**material.attestations}
    swapped[old], swapped[new] = material.attestations[new], material.attestations[old]
    assert verify_records(LogVerifier(material), log.stored(), None).size == 2
    crafted = dataclasses.replace(material, attestations=swapped)
    with pytest.raises(TraceError) as caught:
        verify_records(LogVerifier(crafted), log.stored(), None)
    assert (caught.value.reason, caught.value.index) == (_F.BAD_SIGNATURE, 0)
    log.close()


@pytest.mark.parametrize(
    "history",
    [
        b"\x9b" + b"\xff" * 8,  # an array of 2**64 - 1 items, none following
        b"\x5b" + b"\xff" * 8,  # a byte string of 2**64 - 1 bytes
        b"\x81" * 40_000 + b"\x00",  # nested 40,000 deep
    ],
)
def test_a_line_whose_history_lies_about_what_follows_is_refused(
    two_logs: tuple[Held, list[dict[str, object]], list[dict[str, object]]], history: bytes
) -> None:
    """Tried: an export line whose signer history (CBOR) holds a count lying about what follows
    (an array or byte string of 2**64 - 1) or nests past any limit: refused as the signer's
    (SIGNER_INVALID at the line's record), read no further than its bytes."""
    _, lines, _ = two_logs
    signer = {**lines[0]["signer"], "history": base64.b64encode(history).decode()}  # type: ignore[dict-item]
    fault = _refused([json.dumps({**lines[0], "signer": signer}).encode()])
    assert (fault.reason, fault.index) == (_F.SIGNER_INVALID, 0)
