"""Review 59m: attacks on review 59i's rotation dating by kept chains
(`troth.trace.signed_until`) and review 59k's `_prefix_in_log` (`troth trace verify --file`)
that did not work (tests/test_review59m_rotation.py and test_review59m_trace.py have the
findings).

- rotation: rows of the `chains` table planted to hold the identity's digest (malformed CBOR,
  nesting past MAX_CBOR_DEPTH, a blob past MAX_CHAIN_BYTES, a link whose body or attestation is
  garbage, text that is no UTF-8) neither refuse the rotation nor keep the real newest link
  from dating it; the digest found in another field (a link issued TO the identity, dated
  ahead) dates nothing.
- trace: the consistency proof `troth trace verify --file OLD_EXPORT` asks of the node's log is
  a read: with another process holding the log's write lock it answers at once, and it moves
  nothing the node accepted.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.support.cli import run
from tests.support.gates import SUPPORT
from tests.support.histories import DAY
from tests.support.traces import node_trace_db
from tests.test_review59b_trace import _changes, _record, _rotate
from tests.test_review59m_rotation import boss_chain, keep
from tests.test_review59m_trace import _older_export_then_accepted
from troth.clock import SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.credentials.format import CHAIN_TYPE, SignedCredential
from troth.encoding import cbor
from troth.node import open_node, troth_home


def _boss_and_log() -> tuple[int, bytes]:
    run("identity", "create", "boss")
    run("identity", "create", "agent")
    now = SystemClock().now()
    _record("agent", now)  # the log exists
    with open_node("default", home=troth_home()) as node:
        digest = node.identities.get("boss", now=now).identity.identifier.digest
    return now, digest


def test_rotation_planted_malformed_chains_neither_refuse_nor_hide_the_newest_link() -> None:
    now, digest = _boss_and_log()
    real = CredentialChain.decode(boss_chain(now + 250))  # its copies are tried first
    link = real.credentials[0]
    garbage_body = SignedCredential(digest * 3, link.signature, link.attestation)
    garbage_attestation = SignedCredential(link.body, link.signature, digest + b"\xff" * 40)
    keep(
        boss_chain(now + 200),  # the real newest link, kept first: the rest is newer
        b"\xff" + digest,  # no CBOR
        b"\x81" * 10_000 + b"\x58\x20" + digest,  # nested far past MAX_CBOR_DEPTH
        b"\x5a" + (2 * 1024 * 1024).to_bytes(4, "big") + digest * 65_536,  # past MAX_CHAIN_BYTES
        CredentialChain((garbage_body,), real.histories).encode(),
        CredentialChain((garbage_attestation,), real.histories).encode(),
        cbor.encode([CHAIN_TYPE, 1, [[digest, 1, 2]], []]),  # wrong types
    )
    _rotate(now, "boss")
    assert _changes("boss", now)[1:] == [now + 200]


def test_rotation_a_text_row_not_utf8_does_not_refuse_the_rotation() -> None:
    now, digest = _boss_and_log()
    with sqlite3.connect(node_trace_db(troth_home())) as conn:
        conn.execute(
            "INSERT INTO chains VALUES (?, CAST(? AS TEXT))",
            (hashlib.sha256(digest).digest(), b"\xff\xfe" + digest),
        )
    _rotate(now, "boss")
    assert _changes("boss", now)[1:] == [now]


def test_rotation_a_link_issued_to_the_identity_dates_nothing() -> None:
    """The byte search finds boss's digest as a link's subject too: a link agent issued to
    boss, dated ahead and validly signed, is decoded and dates nothing (not boss's)."""
    now, _ = _boss_and_log()
    with open_node("default", home=troth_home()) as node:
        agent = node.identities.signer("agent", now=now + 250)
        boss = node.identities.get("boss", now=now).identity
        link = issue_credential(
            agent, subject=boss.identifier, attributes=SUPPORT, now=now + 250, ttl=DAY, depth=3
        )
        keep(CredentialChain((link,), (agent.identity.history,)).encode())
    _rotate(now, "boss")
    assert _changes("boss", now)[1:] == [now]


def test_trace_the_prefix_proof_reads_the_log_under_a_writers_lock(tmp_path: Path) -> None:
    old = _older_export_then_accepted(tmp_path)
    writer = sqlite3.connect(node_trace_db(troth_home()), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a running node's append, in progress
        said = run("trace", "verify", "--file", str(old))
    finally:
        writer.close()
    assert said.stdout.startswith("unanchored: 1 record(s)"), said.stdout
    assert "a prefix of, the node's accepted checkpoint of 2 record" in said.stderr
    with open_node("default", home=troth_home()) as node:
        rows = node.db.fetch_all("SELECT size FROM trace_accepted")
    assert [int(row[0]) for row in rows] == [2]
