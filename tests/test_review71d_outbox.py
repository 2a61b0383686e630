"""Review 71d (area: outbox): a second review of the outbox's signing again at a rotation and
the collector's ALREADY answer (70b, 70o, 70s, 70x).

1. (signing then rolling back, low) A rotation with more than MAX_ROTATION_RESIGNED_RECORDS of
   the retired key's rows queued signed that many with the new key (up to 3 s of node.db's
   write lock, a token's signatures too) before it met one more and was refused, rolling all of
   it back (review 70b, outbox 3, knowingly left). Now it counts the agent's queued rows first
   (one COUNT, bounded at one past the limit, on the outbox's index) and refuses before any
   row is signed again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_review69a_outbox import _node_agent
from tests.test_trace_service import NOW, F
from troth import limits
from troth.errors import TraceError
from troth.vault.base import KeyHandle


def _signatures_of_refused_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bound: int
) -> int:
    """How many signatures the node's vault made in a rotation of the agent (two rows queued)
    refused OVER_LIMIT with MAX_ROTATION_RESIGNED_RECORDS at `bound`."""
    monkeypatch.setattr(limits, "MAX_ROTATION_RESIGNED_RECORDS", bound, raising=False)
    node, outbox = _node_agent(tmp_path)
    signed: list[bytes] = []
    vault_type = type(node.vault)
    real = vault_type.sign

    def counted(self: object, handle: KeyHandle, data: bytes) -> bytes:
        signed.append(data)
        return real(self, handle, data)  # type: ignore[arg-type]

    try:
        with monkeypatch.context() as patch:
            patch.setattr(vault_type, "sign", counted)
            with pytest.raises(TraceError) as refused:
                node.identities.rotate("agent", now=NOW + 10)
        assert refused.value.reason is F.OVER_LIMIT
        assert node.identities.get("agent", now=NOW + 20).identity.change_count == 1
        return len(signed)
    finally:
        outbox.close()
        node.close()


def test_a_rotation_over_the_bound_signs_no_row_before_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """71d outbox 1: two rows queued, the bound at 1: the refused rotation makes no more
    signatures than one refused at a bound of 0 (before any row): none of a row again."""
    first = _signatures_of_refused_rotation(tmp_path / "one", monkeypatch, 1)
    none = _signatures_of_refused_rotation(tmp_path / "zero", monkeypatch, 0)
    assert first == none
