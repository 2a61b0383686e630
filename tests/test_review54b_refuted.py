"""Review 54b (decoders): attacks tried that the code refused as it should. Each stays as a
test: JSON nested far past MAX_JSON_DEPTH, or holding numbers no JSON reader should take, into
every JSON decoder troth writes for a peer's, a file's or a member's bytes (an MCP JSON-RPC
message is read by the MCP SDK's parser, which takes NaN and Infinity: a tool call carrying one
is denied by the gate, which judges no such value); a troth VC mutated and signed again by its
authority; hostile tool-call arguments at a decision point; a revocation feed file with a
mutated page."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from tests.support.decoder_vectors import AUTHORITY, CREDENTIALS, CT, feed, vectors
from tests.support.fixed_vault import FixedKeyVault
from tests.support.limit_mutations import QUICK, hostile
from tests.support.mutations import JSON_VALUES, json_mutation, typed
from tests.support.parties import Party, make_party
from tests.test_decoders_mutated_credentials import decision_point, read_vc
from troth.credentials import ChainVerifier, TrustPolicy
from troth.credentials.revocation_pages import write_page_sequence
from troth.credentials.vc import sign_eddsa_jcs_2022
from troth.crypto import KeyType
from troth.errors import TrothError
from troth.gates import ToolCall
from troth.identity import Identifier
from troth.node.config import NodeConfig
from troth.node.verify import read_feed_file
from troth.secrets import Jwks
from troth.trace import export
from troth.trace.dsse import decode_envelope, parse_envelope
from troth.trace.record_decode import decode_payload
from troth.trace.stored import decode_disclosures

JSON_READERS: dict[str, Callable[[bytes], object]] = {
    "node.json": lambda d: NodeConfig.from_json(b'{"name":' + d + b"}", Path("node.json")),
    "stored disclosures": lambda d: decode_disclosures(b'{"args":' + d + b"}"),
    "proof bundle": lambda d: export.verify_bundle(b'{"type":' + d + b"}"),
    "DSSE envelope": lambda d: parse_envelope(b'{"payload":' + d + b"}"),
    "trace envelope": lambda d: decode_envelope(b'{"payload":' + d + b"}"),
    "JWKS": lambda d: Jwks.parse(b'{"keys":' + d + b"}"),
    "record payload": lambda d: decode_payload(b'{"agent":' + d + b"}"),
}
HOSTILE_JSON = [
    b"[" * 33 + b"]" * 33,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b"1" * 5_000,  # past Python's default limit of digits for int()
    b"1e999999",
    b"-" + b"9" * 4_400,
    b"NaN",
    b'"\\ud800"',
]


@pytest.mark.parametrize("reader", sorted(JSON_READERS))
@pytest.mark.parametrize("value", HOSTILE_JSON, ids=lambda v: v[:12].decode())
def test_hostile_json_is_refused_typed(reader: str, value: bytes) -> None:
    with pytest.raises(TrothError):
        JSON_READERS[reader](value)


@cache
def vc_authority() -> Party:
    """The authority of tests/vectors/vc (its generate.py's first party)."""
    vault = FixedKeyVault([(KeyType.ED25519, bytes([n]) * 32) for n in range(1, 7)])
    authority = make_party(vault, now=vectors("vc/troth_vc.json")["created_at"])
    make_party(vault, now=vectors("vc/troth_vc.json")["created_at"])  # the member (its keys)
    return authority


@QUICK
@given(data=st.data())
def test_a_resigned_vc_is_verified_or_refused_typed(data: st.DataObject) -> None:
    """The VC's document (or its proof options) mutated as JSON and secured again by its
    authority's signing key: verified, or CredentialError."""
    document = vectors("vc/troth_vc.json")["document"]
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in document["proof"].items() if k not in ("@context", "proofValue")}
    signer = vc_authority().signer
    assert sign_eddsa_jcs_2022(unsecured, options, signer.sign) == document
    which = data.draw(st.booleans())
    mutant = json.loads(
        data.draw(json_mutation(json.dumps(unsecured if which else options).encode()))
    )
    if not isinstance(mutant, dict):
        reject()
    try:
        secured = sign_eddsa_jcs_2022(
            mutant if which else unsecured, options if which else mutant, signer.sign
        )
    except TrothError:  # not canonicalisable, or not a DataIntegrityProof: nothing signed
        reject()
    typed(read_vc, json.dumps(secured).encode())


@QUICK
@given(data=st.data())
def test_hostile_tool_arguments_at_a_decision_point(data: st.DataObject) -> None:
    """Any JSON values (nested, huge integers, floats, NaN) as a tool call's arguments: a
    decision, or PolicyError."""
    verifier = ChainVerifier(TrustPolicy(frozenset({AUTHORITY})))
    member = Identifier.parse(CREDENTIALS["member"])
    chain = bytes.fromhex(CREDENTIALS["chain1"])
    credential = verifier.verify(chain, presenter=member, feeds={AUTHORITY: feed()}, now=CT)
    values: st.SearchStrategy[Any] = st.one_of(
        JSON_VALUES, st.floats(), st.integers(1, 200).map(lambda n: [[]] * n)
    )
    arguments: dict[str, Any] = {"order_id": data.draw(values), "amount": data.draw(values)}
    tool = data.draw(st.sampled_from(["refund", "lookup_order", "unknown"]))
    typed(lambda _: decision_point().decide(credential, ToolCall(tool, arguments), now=CT), b"")


@QUICK
@given(data=st.data())
def test_a_feed_file_with_a_mutated_page(data: st.DataObject) -> None:
    """`troth credential verify --feed FILE`: a feed file whose page is mutated (at the limits
    too): the feed, or CredentialError FEED_INVALID."""
    page = data.draw(hostile(bytes.fromhex(CREDENTIALS["feed"])))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "feed")
        with open(path, "wb") as file:
            file.write(b"".join(write_page_sequence([page])))
        typed(lambda _: read_feed_file(path, frozenset({AUTHORITY}), CT), b"")
