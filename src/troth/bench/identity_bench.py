"""Identity benchmarks: creation (in memory, persisted in batches, persisted one by one) against
two keygens + signature + hashes, rotation against its keygen + signatures + hashes + seal,
history verification against its signature verifications, and the verification of an identity
rotated 10,000 times (presented from its newest checkpoint) against a fresh one's."""

from __future__ import annotations

import tempfile
from pathlib import Path

from troth.bench.credentials_bench import _signer as authority_signer
from troth.bench.durable_floor import DurableWrite, checkpoint, settled
from troth.bench.harness import Case, Measurement, measure_pair, ratio_target, smoking
from troth.credentials import (
    RevocationEntry,
    RevocationKind,
    Supersession,
    build_page,
    feed_genesis,
    next_head,
    verify_page,
)
from troth.credentials.revocation_held import feed_checkpoints
from troth.crypto import KeyType
from troth.crypto.bench_floor import ed25519_verify_loop, identity_floor, rotation_floor
from troth.identity import (
    Checkpoint,
    Identifier,
    VerifiedIdentity,
    new_identity,
    rotate_identity,
    verify_history,
)
from troth.node import init_node, open_node
from troth.vault import SoftwareVault

NOW = 1_790_000_000
_US = 1e6


_FLOOR = "floor: 2 Ed25519 keygens (primary, next) + public keys + sign + 2 SHA-256"
_SEALED_FLOOR = _FLOOR + " + AES-GCM seals of both private keys"
_ROTATION_CRYPTO = "Ed25519 keygen (next key) + 2 public keys + 2 signs + 2 SHA-256 + AES-GCM seal"
_ROTATION_FLOOR = f"floor: {_ROTATION_CRYPTO} + 1 durable write (SQLite transaction)"


def _create(quick: bool) -> list[Measurement]:
    n, rounds = (200, 3) if quick else (1000, 7)
    results = []

    vault = SoftwareVault()

    def in_memory(k: int) -> None:
        for _ in range(k):
            new_identity(vault, KeyType.ED25519, now=NOW, valid_for=86_400)

    value, floor = measure_pair(in_memory, identity_floor(sealed=False), n=n, rounds=rounds)
    results.append(
        Measurement(
            "identity.create.memory",
            value * _US,
            "us/identity",
            _FLOOR,
            floor * _US,
            value / floor,
        )
    )

    with tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp:
        home = Path(tmp)
        init_node("bench", home=home)
        with open_node("bench", home=home) as node:
            service = node.identities

            def batched(k: int) -> None:
                service.create_many(k, now=NOW)

            def single(k: int) -> None:
                for _ in range(k):
                    service.create(now=NOW)

            sealed_floor = identity_floor(sealed=True)
            value, floor = measure_pair(batched, sealed_floor, n=n, rounds=rounds)
            ratio = value / floor
            target, ok = ratio_target(ratio, 1.5)
            rate = 1 / value
            results.append(
                Measurement(
                    "identity.create.persisted",
                    value * _US,
                    "us/identity",
                    _SEALED_FLOOR,
                    floor * _US,
                    ratio,
                    target + " and >= 2000/s",
                    ok and rate >= 2000,
                    {"identities_per_s": round(rate), "transaction": f"one per batch of {n}"},
                )
            )
            value, floor = measure_pair(single, sealed_floor, n=n // 4, rounds=rounds)
            results.append(
                Measurement(
                    "identity.create.persisted.single",
                    value * _US,
                    "us/identity",
                    _SEALED_FLOOR,
                    floor * _US,
                    value / floor,
                    extra={
                        "identities_per_s": round(1 / value),
                        "transaction": "one per identity",
                        "durability": node.config.durability,
                    },
                )
            )
    return results


def verified_histories() -> tuple[bytes, bytes]:
    """The histories `identity.verify.1` and `.5` verify: a new identity's (one change, one
    signature) and one rotated 4 times (five changes, 9 signatures)."""
    vault = SoftwareVault()
    handle, identity, next_key = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**8)
    one = identity.history
    for step in range(4):
        handle, identity, next_key = rotate_identity(
            vault, identity, handle, next_key, now=NOW + step + 1, valid_for=10**8
        )
    return one, identity.history


def _verify(quick: bool) -> list[Measurement]:
    n, rounds = (200, 3) if quick else (1000, 7)
    one, five = verified_histories()
    results = []
    for name, history, verifications in (
        ("identity.verify.1", one, 1),
        ("identity.verify.5", five, 9),
    ):
        floor_batch = ed25519_verify_loop(verifications)

        def subject(k: int, history: bytes = history) -> None:
            for _ in range(k):
                verify_history(history, now=NOW + 10)

        value, floor = measure_pair(subject, floor_batch, n=n // verifications + 50, rounds=rounds)
        ratio = value / floor
        target, ok = ratio_target(ratio, 1.3)
        results.append(
            Measurement(
                name,
                value * _US,
                "us/history",
                f"floor: {verifications} Ed25519 key loads + verifications",
                floor * _US,
                ratio,
                target,
                ok,
            )
        )
    return results


LONG_LIFE = 10_000
"""Rotations of the identity whose verification `identity.verify.after-10k-rotations` times."""
SMOKE_LIFE = 100
"""Its rotations in a smoke run (`troth bench --smoke`, whose figures mean nothing): past the
trimming of the presented history at 32 changes, in a fraction of the time."""


def _long_lived(vault: SoftwareVault, authority: Identifier, rotations: int) -> VerifiedIdentity:
    """An identity rotated `rotations` times, presented as its node would once its authority
    attested the last change: from that change on (a checkpointed history of one change).
    Trimmed as it goes, as a node's presented history is, so building it stays linear."""
    handle, identity, next_key = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**8)
    for step in range(1, rotations + 1):
        retired = handle
        handle, identity, next_key = rotate_identity(
            vault, identity, handle, next_key, now=NOW + step, valid_for=10**8
        )
        vault.delete(retired)  # as a node does (the in-memory vault keeps 4,096 keys)
        if len(identity.changes) > 32:
            checkpoint = Checkpoint(identity.identifier.digest, authority.digest, step)
            identity = identity.from_checkpoint(checkpoint)
    return identity.from_checkpoint(
        Checkpoint(identity.identifier.digest, authority.digest, rotations)
    )


def _verify_long_lived(quick: bool) -> list[Measurement]:
    """Verification of an identity rotated 10,000 times, with the authority's feed attesting
    its checkpoint, against a fresh identity's (the cost must not grow with the rotations). A
    smoke run (its figures mean nothing) rotates SMOKE_LIFE times, past the trimming at 32."""
    n, rounds = (200, 3) if quick else (1000, 7)
    rotations = SMOKE_LIFE if smoking() else LONG_LIFE
    vault = SoftwareVault()
    signer = authority_signer(vault)
    authority = signer.identity
    long_lived = _long_lived(vault, authority.identifier, rotations)
    when = NOW + rotations + 1
    entry = RevocationEntry(
        0,
        RevocationKind.SUPERSEDED,
        long_lived.identifier.digest,
        long_lived.identifier,
        when,
        "",
        Supersession(rotations + 1, long_lived.current_change_hash),
    ).encode()
    head = next_head(feed_genesis(authority.identifier), entry)
    page = build_page(signer, [entry], start=0, head=head, latest=1, now=when)
    feed = verify_page(page, authority=authority.identifier, now=when)
    checkpoints = feed_checkpoints({authority.identifier: feed}, now=when, max_staleness=300)
    fresh = new_identity(vault, KeyType.ED25519, now=NOW, valid_for=10**8).identity.history
    history = long_lived.history

    def subject(k: int) -> None:
        for _ in range(k):
            verify_history(history, now=when, checkpoints=checkpoints)

    def baseline(k: int) -> None:
        for _ in range(k):
            verify_history(fresh, now=when)

    value, floor = measure_pair(subject, baseline, n=n, rounds=rounds)
    ratio = value / floor
    target, ok = ratio_target(ratio, 1.3)
    return [
        Measurement(
            "identity.verify.after-10k-rotations",
            value * _US,
            "us/history",
            "identity.verify of a fresh identity (one change)",
            floor * _US,
            ratio,
            target,
            ok,
            {"rotations": rotations, "changes_presented": len(long_lived.changes)},
        )
    ]


def _rotate(quick: bool) -> list[Measurement]:
    """`IdentityService.rotate` on a persisted node: each rotation turns a fresh one-change
    identity into a two-change one (a typical rotation, not one of a 64-change history)."""
    n, rounds = (100, 3) if quick else (250, 7)  # every key stays in the vault's cache
    with tempfile.TemporaryDirectory(prefix="troth-bench-") as tmp:
        home = Path(tmp)
        init_node("bench", home=home)
        with open_node("bench", home=home) as node:
            service = node.identities
            created = service.create_many(max(1, n // 10) + n * rounds, now=NOW, name_prefix="r")
            for local in created:  # a node that has used its identities: each verified once
                service.get(local.name or "", now=NOW)
            names = iter([local.name or "" for local in created])

            def rotate(k: int) -> None:
                for _ in range(k):
                    service.rotate(next(names), now=NOW + 1)

            # a rotation must be durable before it answers (the old key retires only once the
            # new change is stored): one transaction at the node's durability, as a lease's
            crypto = rotation_floor()
            write = DurableWrite(home / "floor.db", durability=node.config.durability)

            def writes(k: int) -> None:
                for _ in range(k):
                    write()

            def floor_batch(k: int) -> None:
                crypto(k)
                writes(k)

            value, floor = measure_pair(
                settled(rotate, lambda: checkpoint(node.db)),
                settled(floor_batch, write.settle),
                n=n,
                rounds=rounds,
            )
            crypto_only, write_only = measure_pair(
                crypto, settled(writes, write.settle), n=n, rounds=rounds
            )
            write.close()
            ratio = value / floor
            target, ok = ratio_target(ratio, 2.0)
            return [
                Measurement(
                    "identity.rotate",
                    value * _US,
                    "us/rotation",
                    _ROTATION_FLOOR,
                    floor * _US,
                    ratio,
                    target,
                    ok,
                    {
                        "rotations_per_s": round(1 / value),
                        "transaction": "one per rotation, then the old key's deletion",
                        "history": "reused from memory (a fresh process first verifies it)",
                        "durability": node.config.durability,
                        "floor_crypto_us": round(crypto_only * _US, 1),
                        "floor_write_us": round(write_only * _US, 1),
                        "ratio_to_crypto_alone": round(value / crypto_only, 2),
                    },
                )
            ]


CASES = [
    Case("identity.create", _create),
    Case("identity.rotate", _rotate),
    Case("identity.verify", _verify),
    Case("identity.long-life", _verify_long_lived),  # row identity.verify.after-10k-rotations
]
