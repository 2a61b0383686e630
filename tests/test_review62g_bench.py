"""Review 62g, bench: the honesty of `troth bench`'s figures (benchmarks/README.md).

1. `noise.xx.handshake.peer`: the `noiseprotocol` peer re-derived both static public keys (an
   X25519 scalar multiplication each, `KeyPair25519.from_private_bytes`) inside every timed
   handshake, while troth's side was handed static keys made once: the peer did 10 X25519
   operations a handshake to troth's 8, a slower peer and a flattered ratio.
2. `trace.verify.*`: its subject and floor ran `n // size` log verifications, zero for any
   batch shorter than the log: the warm-up verified nothing, and a smoke run
   (`troth bench --smoke`, "every case runs") never called `verify_log` at all.
3. `trace.proof.*`: timed once each, not beside their floor: the floor was hashed after the
   proofs, once, no warm-up, no rounds (the README says every figure is timed beside its floor,
   rounds interleaved).
4. `secrets.token.issue`: its floor's signature went through the vault (`SoftwareVault.sign`:
   the key's per-use check, a SQLite `PRAGMA data_version` read, ~20 us beside a ~65 us
   signature): bookkeeping in the floor, a flattered ratio.
5. `gates.available_tools.50.uncached`: its floor evaluated each of the 50 tools against all 50
   policies through cedarpy's public wrapper, where the listing evaluates each against the
   policies that can apply to it (one here) with the native call: a floor heavier than the
   work it stands for (troth's listing read under it, ~0.35-0.6x).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from cedarpy import _internal as cedarpy_internal

import troth.gates.cedar_call as cedar_call
from troth.bench import gates_bench, harness, secrets_bench, trace_bench
from troth.bench.durable_floor import DurableWrite
from troth.bench.noise_peer import noiseprotocol_available, noiseprotocol_xx_handshakes
from troth.bench.tls_peer import mutual_tls_handshakes
from troth.crypto.bench_tls import make_tls_pki
from troth.trace import verify as trace_verify
from troth.vault import SoftwareVault

_PROTOCOL = "Noise_XX_25519_AESGCM_SHA256"


@pytest.mark.skipif(not noiseprotocol_available(), reason="the bench extra (noiseprotocol)")
def test_noise_peer_derives_no_static_key_inside_the_timed_handshakes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each timed peer handshake generates its two ephemeral keys (as troth's does) and loads
    no static key: those exist before the handshake on both sides."""
    keypairs: Any = importlib.import_module("noise.backends.default.keypairs")
    diffie_hellmans: Any = importlib.import_module("noise.backends.default.diffie_hellmans")

    batch = noiseprotocol_xx_handshakes(_PROTOCOL)  # setup: static keys made here
    loads: list[bytes] = []
    generated: list[object] = []
    load = keypairs.KeyPair25519.from_private_bytes
    generate = diffie_hellmans.ED25519.generate_keypair

    def counted_load(cls: Any, private_bytes: bytes) -> Any:
        loads.append(private_bytes)
        return load(private_bytes)

    def counted_generate(self: Any) -> Any:
        generated.append(self)
        return generate(self)

    monkeypatch.setattr(keypairs.KeyPair25519, "from_private_bytes", classmethod(counted_load))
    monkeypatch.setattr(diffie_hellmans.ED25519, "generate_keypair", counted_generate)
    batch(3)  # raises unless every handshake finished
    assert len(generated) == 2 * 3  # the work a handshake must do is still done
    assert loads == []


@pytest.fixture(scope="module")
def smoke_trace_verify() -> tuple[list[Any], list[str], list[Any]]:
    """`trace.verify` run once as `troth bench --smoke` runs it (quick, smoke): the logs
    verified, the rows measured beside their floor by `measure_pair`, the rows."""
    verified: list[Any] = []
    paired: list[str] = []
    original_verify, original_pair = trace_verify.verify_log, harness.measure_pair

    def verify_log(log: Any, **kw: Any) -> Any:
        verified.append(log)
        return original_verify(log, **kw)

    def measure_pair(subject: Any, floor: Any, **kw: Any) -> tuple[float, float]:
        paired.append(getattr(subject, "__name__", "?"))
        return original_pair(subject, floor, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trace_bench, "verify_log", verify_log)
        patch.setattr(trace_bench, "measure_pair", measure_pair)
        with harness.smoke():
            rows = trace_bench._verify_and_prove(True)
    return verified, paired, rows


def test_trace_verify_smoke_run_verifies_the_log(
    smoke_trace_verify: tuple[list[Any], list[str], list[Any]],
) -> None:
    verified, _, rows = smoke_trace_verify
    assert verified, "a smoke run of trace.verify verified no log"
    verify_row = next(m for m in rows if m.name.startswith("trace.verify."))
    assert verify_row.value > 0
    assert verify_row.baseline_value > 0


def test_proof_rows_are_measured_beside_their_floor(
    smoke_trace_verify: tuple[list[Any], list[str], list[Any]],
) -> None:
    _, paired, rows = smoke_trace_verify
    names = [m.name for m in rows]
    assert names[1:] == [
        "trace.proof.inclusion.generate",
        "trace.proof.inclusion.verify",
        "trace.proof.consistency.generate",
    ]
    assert len(paired) == len(rows)  # one interleaved pair per row


def test_token_issue_floor_is_a_raw_signature_and_one_durable_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`secrets.token.issue`'s floor signs with a raw key, not through the vault (whose per-use
    check, a `PRAGMA data_version` read, is bookkeeping, not cryptography: ~20 us a signature,
    counted in the floor it flattered the ratio), and makes one durable write per issue."""
    vault_signs: list[bytes] = []
    writes: list[object] = []
    sign, write = SoftwareVault.sign, DurableWrite.__call__

    def counted_sign(self: SoftwareVault, handle: Any, data: bytes) -> bytes:
        vault_signs.append(data)
        return sign(self, handle, data)

    def counted_write(self: DurableWrite) -> None:
        writes.append(self)
        write(self)

    monkeypatch.setattr(SoftwareVault, "sign", counted_sign)
    monkeypatch.setattr(DurableWrite, "__call__", counted_write)
    floors: list[tuple[int, int]] = []
    original = harness.measure_pair

    def measure_pair(subject: Any, floor: Any, **kw: Any) -> tuple[float, float]:
        if not floors:  # the first pair is the issue's
            signs_before, writes_before = len(vault_signs), len(writes)
            floor(3)
            floors.append((len(vault_signs) - signs_before, len(writes) - writes_before))
        return original(subject, floor, **kw)

    monkeypatch.setattr(secrets_bench, "measure_pair", measure_pair)
    with harness.smoke():
        rows = secrets_bench._tokens(True)
    assert rows[0].name == "secrets.token.issue"
    assert floors == [(0, 3)]


def test_available_tools_floor_is_no_more_cedar_work_than_the_listing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`gates.available_tools.50.uncached`: its floor evaluates each tool against the policies
    the listing evaluates it against (the compiled per-tool sets, review 55n preview 2), with
    cedarpy's native call, as the listing does; it evaluated every tool against all 50
    policies through the public wrapper, more Cedar work than troth's own listing does."""
    pairs: list[tuple[Any, Any]] = []
    original = harness.measure_pair

    def measure_pair(subject: Any, floor: Any, **kw: Any) -> tuple[float, float]:
        pairs.append((subject, floor))
        return original(subject, floor, **kw)

    monkeypatch.setattr(gates_bench, "measure_pair", measure_pair)
    with harness.smoke():
        gates_bench._available_tools(True)
    listing, floor = pairs[0]
    seen: list[tuple[str, int]] = []
    native = cedar_call._native_partial
    assert native is not None

    def spy(request: dict[str, Any], policies: Any, *args: Any) -> str:
        seen.append((str(request["action"]), id(policies)))
        result: str = native(request, policies, *args)
        return result

    monkeypatch.setattr(cedar_call, "_native_partial", spy)
    monkeypatch.setattr(cedarpy_internal, "is_authorized_partial", spy)
    listing(1)
    by_listing, seen[:] = sorted(seen), []
    floor(1)
    assert len(by_listing) == 50
    assert sorted(seen) == by_listing


def test_resumed_tls_peer_resumes_every_timed_handshake(tmp_path: Path) -> None:
    """`channel.establish.tcp.resumed`'s peer: the like-for-like peer of troth's kept
    claims resumes the first session in every timed handshake (the peer raises otherwise), and
    the full-handshake peer resumes none."""
    pki = make_tls_pki(tmp_path)
    assert mutual_tls_handshakes(pki, 2, resumed=True) > 0
    assert mutual_tls_handshakes(pki, 2) > 0
