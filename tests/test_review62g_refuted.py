"""Review 62g, bench honesty: concerns about `troth bench`'s rows that did not hold. Each test
would fail if a row's subject stopped doing the work its floor stands for (a memo across
iterations, a signature skipped), if the harness stopped interleaving its sides, or if a peer
were configured to do less (no certificate check, session resumption)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import troth.crypto.keys as crypto_keys
from tests.support.cedar_spy import spy_native
from tests.support.spies import recorded_calls
from troth.bench import harness
from troth.bench.credentials_bench import NOW, _chain
from troth.bench.gates_bench import ARGS, _policies, _setup
from troth.bench.identity_bench import verified_histories
from troth.bench.secrets_bench import _agents, _broker
from troth.bench.tls_peer import client_context, mutual_tls_handshakes, server_context
from troth.credentials import ChainVerifier, TrustPolicy
from troth.crypto.bench_tls import make_tls_pki
from troth.gates import ToolCall
from troth.identity import verify_history
from troth.secrets import validate_token
from troth.storage import SqliteDatabase


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every Ed25519 public key troth loads to verify a signature from now on (one a
    verification: `verify_signature` loads the key for each)."""
    return recorded_calls(monkeypatch, crypto_keys, "_load_ed25519")


def _per_call(loaded: list[bytes], call: Callable[[], object], times: int = 3) -> list[int]:
    counts = []
    for _ in range(times):
        before = len(loaded)
        call()
        counts.append(len(loaded) - before)
    return counts


@pytest.mark.parametrize("links", [1, 2, 5])
def test_cold_chain_verification_verifies_what_its_floor_counts(
    verifications: list[bytes], links: int
) -> None:
    """`credential.verify` / `chain.verify.N.cold.floor`: each iteration (a new verifier)
    verifies 3 signatures a link, the floor's count, every time (no memo across verifiers)."""
    data, actor, feeds, authority = _chain(links)
    policy = TrustPolicy(frozenset({authority.identity.identifier}))

    def cold() -> object:
        return ChainVerifier(policy).verify(data, presenter=actor, feeds=feeds, now=NOW + 1)

    assert _per_call(verifications, cold) == [3 * links] * 3


def test_history_verification_verifies_what_its_floor_counts(verifications: list[bytes]) -> None:
    """`identity.verify.1` and `.5`: 1 and 9 signatures per call, every call."""
    one, five = verified_histories()
    assert _per_call(verifications, lambda: verify_history(one, now=NOW + 10)) == [1] * 3
    assert _per_call(verifications, lambda: verify_history(five, now=NOW + 10)) == [9] * 3


def test_token_validation_verifies_its_signature_every_call(
    verifications: list[bytes], tmp_path: Path
) -> None:
    """`secrets.token.validate`: the claims of a token seen before are kept, but every call
    still verifies its signature (the floor's one verification)."""
    (credential,) = _agents(1, NOW)
    broker = _broker(SqliteDatabase(tmp_path / "node.db"), [credential], NOW)
    try:
        token = str(broker.issue(credential, "payments", now=NOW).credential.reveal()["token"])
        jwks = broker.jwks(NOW)

        def validate() -> object:
            return validate_token(token, jwks, audience="payments", now=NOW, revoked=frozenset())

        assert _per_call(verifications, validate) == [1] * 3
    finally:
        broker.close()


def test_gate_decision_calls_cedar_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """`gates.decide.N`: the entities are kept per chain, the decision is not: every
    `decide` hands Cedar's native call the request (the floor's one call)."""
    point, _, credential = _setup(_policies(1, ["refund"]), ["refund"])
    seen = spy_native(monkeypatch)
    for _ in range(3):
        assert point.decide(credential, ToolCall("refund", ARGS), now=NOW + 1).allowed
    assert len(seen) == 3


def test_measure_pair_interleaves_and_takes_each_sides_minimum() -> None:
    """Rounds alternate subject and floor (after a warm-up of each), and each side's figure is
    its own least round: noise in one round does not pass to the other side."""
    order: list[str] = []
    subject_times = iter([9.0, 3.0, 5.0, 4.0])  # warm-up, then rounds
    floor_times = iter([9.0, 2.0, 1.0, 6.0])

    def subject(n: int) -> float:
        order.append("s")
        return next(subject_times)

    def floor(n: int) -> float:
        order.append("f")
        return next(floor_times)

    assert harness.measure_pair(subject, floor, n=10, rounds=3) == (3.0, 1.0)
    assert order == ["s", "f"] * 4


@pytest.mark.parametrize(("ratio", "met"), [(1.49, True), (1.5, True), (1.51, False)])
def test_time_ratio_targets_are_upper_bounds(ratio: float, met: bool) -> None:
    """A time ratio (troth's time / its floor's) meets `<= limit` only at or under it."""
    assert harness.ratio_target(ratio, 1.5) == ("<= 1.5x", met)


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> None:
    """One TLS handshake over a socket pair, the server's side in a thread; raises what either
    side raised."""
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(left, server_side=True) as tls:
                tls.sendall(b"\x01")
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(right, server_hostname="localhost") as tls:
            tls.recv(1)
    finally:
        right.close()
        thread.join(10)
        left.close()
    if errors:
        raise errors[0]


def test_tls_peer_verifies_certificates_both_ways(tmp_path: Path) -> None:
    """The TLS peers (`channel.establish.tcp`, `service.rtt.*`) check certificates both ways:
    a client of another CA is refused by the server, and the client refuses a server of
    another CA; sessions are not resumed (no tickets)."""
    ours = make_tls_pki(tmp_path / "ours")
    other = make_tls_pki(tmp_path / "other")
    assert server_context(ours).num_tickets == 0
    assert server_context(ours).verify_mode is ssl.CERT_REQUIRED
    _handshake(server_context(ours), client_context(ours))  # the pair the bench uses
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(server_context(ours), client_context(other))
    with pytest.raises((ssl.SSLError, OSError)):
        _handshake(server_context(other), client_context(ours))
    assert mutual_tls_handshakes(ours, 1) > 0  # its own check: no resumed session
