"""Review 56f, chains: a record attributing its action to a delegation chain no authority
signed.

1. A record names the chain it acted under, and the log keeps it ("at log"); an export line
   carries it. Offline, `verify_log` and `verify_bundle`/`verify_export` checked only that the
   chain is the one named and ends at the agent (`check_chain`), never that its credentials
   are signed: the support agent's chain with its credential's signature zeroed (or any chain
   an agent wrote itself naming a real authority as issuer) was appended by the agent's own
   log and its export verified `valid` against the kept checkpoint, the forged delegation
   shown as the record's authority. The log now refuses at append, and every offline
   verification refuses, a chain whose credentials do not verify by the histories it carries
   (CREDENTIAL_INVALID, `delegation chain does not verify`). Which authorities to trust, the
   chain's windows and revocations stay the verifier's own question (ChainVerifier), as a
   chain kept elsewhere does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.gates import T, make_world
from tests.support.traces import agent_log, offline_refusals, record_unchecked, under_chain
from troth.credentials.format import CredentialChain, SignedCredential
from troth.errors import TraceError, TraceFailure
from troth.trace.verify import verify_log

NOW = T + 10


def _unsigned(chain: bytes) -> bytes:
    """`chain` with its last credential's signature zeroed: no issuer signed it."""
    decoded = CredentialChain.decode(chain)
    last = decoded.credentials[-1]
    forged = SignedCredential(last.body, bytes(64), last.attestation)
    return CredentialChain((*decoded.credentials[:-1], forged), decoded.histories).encode()


def test_chains1_the_log_refuses_a_chain_no_authority_signed(tmp_path: Path) -> None:
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    forged = _unsigned(world.support_chain)
    with pytest.raises(TraceError) as caught:
        recorder.record(under_chain(forged), chain=forged)
    assert caught.value.reason is TraceFailure.CREDENTIAL_INVALID
    recorder.record(under_chain(world.support_chain), chain=world.support_chain)  # the real one
    assert (verify_log(log).size, verify_log(log).chains_checked) == (1, 1)


def test_chains1_offline_verification_refuses_a_chain_no_authority_signed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    log, recorder = agent_log(tmp_path, world, NOW)
    forged = _unsigned(world.support_chain)
    record_unchecked(monkeypatch, recorder, forged)
    logged, exported, bundled = offline_refusals(log)
    assert (logged.reason, logged.index) == (TraceFailure.CREDENTIAL_INVALID, 0)
    assert (exported.reason, exported.index) == (TraceFailure.CREDENTIAL_INVALID, 0)
    assert bundled.reason is TraceFailure.CREDENTIAL_INVALID
