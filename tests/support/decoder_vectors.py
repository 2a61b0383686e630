"""Mutation fuzzing of every decoder against its golden vectors (tests/vectors/*/): what
tests/test_decoders_mutated_*.py share (the settings, the vectors, the values several sections
read), and the rule they all check.

Each property starts from a valid golden encoding, mutates it (tests/support/mutations.py: a
byte flipped or replaced, truncated, extended, a range deleted, duplicated or inserted; for CBOR
and JSON also a drawn value at a drawn path, into nested CBOR bodies and JSON texts; some signed
again with the vectors' fixed keys so the checks after the signature see hostile values) and
feeds it to the public entry point that reads such bytes from a peer, a file or a member. The
rule (src/troth/errors.py, src/troth/limits/): the entry point answers, or raises one
TrothError subclass — never a bare KeyError, TypeError, IndexError, ValueError,
UnicodeDecodeError, OverflowError, RecursionError, MemoryError, nor hangs. Where an answer
means "valid", it must be for a semantically valid input (`typed(valid_if=...)`: the same
identity, key, head or body, in canonical form).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

from troth.credentials import VerifiedFeed, verify_feed
from troth.identity import Identifier

VECTORS = Path(__file__).parent.parent / "vectors"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def vectors(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data.get("vectors", data)  # type: ignore[no-any-return]


IDENTITY: list[dict[str, Any]] = vectors("identity/identity_vectors.json")  # type: ignore[assignment]
CREDENTIALS = vectors("credentials/credential_vectors.json")
GATES = vectors("gates/bundle_vectors.json")
MCP = vectors("mcp/frame_vectors.json")
SECRETS = vectors("secrets/secret_vectors.json")
TRACE = vectors("trace/trace_vectors.json")
VC = vectors("vc/troth_vc.json")
CHANNEL = vectors("channel/keepalive_vectors.json")

# identity section (tests/test_decoders_mutated_credentials.py); also read by the channel and
# the readers of unverified bytes
ED, P256 = IDENTITY
AT = ED["rotated_at"] + 3600

# credentials section; also read by the VC, bundle, channel and re-signed sections
CT = CREDENTIALS["created_at"] + 300
AUTHORITY = Identifier.parse(CREDENTIALS["authority"])


@cache
def feed() -> VerifiedFeed:
    return verify_feed(
        bytes.fromhex(CREDENTIALS["feed"]), authority=AUTHORITY, now=CT, max_staleness=600
    )
