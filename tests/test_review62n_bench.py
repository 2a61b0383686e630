"""Review 62n, bench: `channel.establish.tcp` like for like (benchmarks/README.md, "Channel
establishment").

1. `channel.establish.tcp`: troth's side reconnected the same two nodes and kept the claims
   and chains it verified before (16 Ed25519 verifications at first contact, 0 after), while
   its TLS peer did a full handshake, both certificate chains verified, no session resumed:
   troth was given resumption-like reuse its peer was denied. Now each timed handshake starts
   from both nodes' verification caches emptied (`troth.bench.first_contact`, outside the
   timing) and verifies what a first contact verifies.
2. The warm side (caches kept) was reported only as extras of that row: it is now a row of its
   own, `channel.establish.tcp.resumed`, against the TLS peer resuming its session.
3. At first contact each node verified the peer's credential chain twice: at the handshake and
   again in the admission's re-check (two `ChainVerifier`s, caches apart), 6 of the 16
   signatures (~0.75 ms of a first contact here). Was a strict xfail until the re-check took up
   the handshake verifier's byte checks (`ChainVerifier(checked_by=...)`, node/trust.py).

Each row's timed handshakes are counted through the bench's own code (`_establish`, its
`measure_pair` replaced by a spy that runs single handshakes and hands the TLS side a stub).
"""

from __future__ import annotations

from typing import Any

import pytest

import troth.crypto.keys as crypto_keys
from troth.bench import channels_bench


def _rows(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, list[int], bool]]:
    """Each row of `channel.establish`: the signatures the very first handshake verified (two
    nodes that never met), those of 3 timed handshakes after it, and whether its TLS peer
    resumed its session."""
    loaded: list[bytes] = []
    load = crypto_keys._load_ed25519

    def counted(data: bytes) -> Any:
        loaded.append(data)  # one per Ed25519 verification (the key loaded for each)
        return load(data)

    resumptions: list[bool] = []

    def tls(pki: Any, count: int, *, resumed: bool = False) -> float:
        resumptions.append(resumed)
        return 1.0

    pairs: list[tuple[int, list[int], bool]] = []

    def measure_pair(subject: Any, floor: Any, **kw: Any) -> tuple[float, float]:
        counts = []
        for _ in range(4):
            before = len(loaded)
            subject(1)
            counts.append(len(loaded) - before)
        floor(1)
        pairs.append((counts[0], counts[1:], resumptions[-1]))
        return float(len(pairs)), 1.0  # the row's value names its pair

    monkeypatch.setattr(crypto_keys, "_load_ed25519", counted)
    monkeypatch.setattr(channels_bench, "mutual_tls_handshakes", tls)
    monkeypatch.setattr(channels_bench, "measure_pair", measure_pair)
    rows = channels_bench._establish(True)
    return {row.name: pairs[round(row.value / 1e6) - 1] for row in rows}


@pytest.fixture(scope="module")
def establish_rows() -> dict[str, tuple[int, list[int], bool]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _rows(monkeypatch)


def test_every_timed_first_contact_handshake_verifies_what_a_first_contact_does(
    establish_rows: dict[str, tuple[int, list[int], bool]],
) -> None:
    """The row's timed handshakes each verify as many signatures as the very first one of
    the two nodes (that never met): every cache that spares a signature is emptied (the
    claims 4, the handshake's chain verifier 6, whose byte checks the decision's re-check takes
    up: leaving either out verified 6)."""
    first, timed, resumed = establish_rows["channel.establish.tcp"]
    assert first == 10  # 2 sides x (history 1, attestation 1, chain 3)
    assert timed == [first] * 3
    assert resumed is False  # a full TLS handshake


def test_the_resumed_row_keeps_the_claims_against_a_resumed_tls_session(
    establish_rows: dict[str, tuple[int, list[int], bool]],
) -> None:
    """Reconnecting, troth verifies no signature again, and its TLS peer resumes a session
    (no certificate sent, signed or verified)."""
    _, timed, resumed = establish_rows["channel.establish.tcp.resumed"]
    assert timed == [0] * 3
    assert resumed is True


def test_a_first_contact_verifies_each_signature_once(
    establish_rows: dict[str, tuple[int, list[int], bool]],
) -> None:
    first, _, _ = establish_rows["channel.establish.tcp"]
    assert first == 2 * (1 + 1 + 3)  # each side: the peer's history, attestation and chain
