"""Review 63k, limits end to end: what one side may make, the other side must accept
(src/troth/limits/).

1. A W3C VC an authority issues for attributes it admits (`check_fits`: the credential body
   within MAX_CREDENTIAL_BYTES) could be larger than MAX_VC_BYTES, which every verifier reads
   first (`troth credential verify --format vc`, `node.verify.verify_vc`): the CLI writes a
   VC indented (`json_text`, indent 2, `\\u0001`-style escapes), so a one-character set value
   of a control character, 2 bytes of CBOR, takes 18 of JSON. With the shortest attribute keys
   (`a.b`, where review 45d tried `a.k00`) the VC was 65,601 bytes: the authority issued and
   recorded it, and no verifier read it. MAX_VC_BYTES is now 96 KiB, above the worst case
   (each byte of the attributes' CBOR at most 9 of JSON: 73,728, and ~2 KB around them).
"""

from __future__ import annotations

import string

from tests.conftest import NOW
from tests.support.parties import make_party, verified_feed
from troth import limits
from troth.cli.output import json_text
from troth.credentials import Attributes, TrustPolicy
from troth.credentials.issue import check_fits
from troth.credentials.vc import export_credential_vc, verify_troth_vc
from troth.encoding.ijson import load_json
from troth.errors import CredentialError
from troth.identity import Identifier
from troth.vault import SoftwareVault

_SHORTEST_KEYS = [
    f"{first}.{second}" for first in "ab" for second in string.ascii_lowercase + string.digits
]
_WIDEST_VALUES = [chr(c) for c in range(1, 32)] + [chr(1) + chr(c) for c in range(1, 34)]
"""Set values widest in escaped JSON for their CBOR: one control character, then two."""


def _widest_attributes() -> Attributes:
    """Attributes `check_fits` admits whose indented JSON is widest (greedy, as review 45d's,
    with the shortest keys the key grammar allows)."""
    items: dict[str, frozenset[str]] = {}
    for key in _SHORTEST_KEYS[: limits.MAX_ATTRIBUTES]:
        values: list[str] = []
        for value in _WIDEST_VALUES[: limits.MAX_ATTRIBUTE_VALUES]:
            try:
                check_fits(Attributes({**items, key: frozenset([*values, value])}))
            except CredentialError:
                break
            values.append(value)
        if not values:
            break
        items[key] = frozenset(values)
    return Attributes(items)


def test_the_widest_vc_an_authority_issues_is_one_every_verifier_reads() -> None:
    authority = make_party(SoftwareVault(), now=NOW)
    document = export_credential_vc(
        authority.signer,
        credential_id=bytes(16),
        subject=Identifier(bytes(32)),
        attributes=_widest_attributes(),
        valid_from=NOW,
        valid_until=NOW + 3600,
        now=NOW,
    )
    written = json_text(document).encode() + b"\n"  # as `troth credential issue --format vc`
    assert len(written) > 65_536  # the case: past the limit before
    read = load_json(written, max_bytes=limits.MAX_VC_BYTES, what="VC")  # as every verifier
    verified = verify_troth_vc(
        read,
        policy=TrustPolicy(frozenset({authority.identifier}), max_feed_staleness=600),
        issuer=authority.identity,
        feeds={authority.identifier: verified_feed(authority, now=NOW)},
        now=NOW,
    )
    assert verified.attributes == _widest_attributes()
