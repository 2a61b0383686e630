"""Review 71q (area: wave3a): attacks on 71k's bounds and 71h's check that did not work, kept
as passing tests.

- 71k's bounds against the largest values troth writes: an issued credential (a body at
  MAX_CREDENTIAL_BYTES, its signature, an attestation at MAX_ATTESTATION_BYTES: CBOR around
  them is 9 bytes, within the 128 allowed), a pending enrollment's ticket (the longest
  `str(Ticket)`, a ticket of MAX_TICKET_BYTES, is ~64 KiB of ASCII, within MAX_TICKET_TEXT
  bytes) and address (MAX_TICKET_BYTES bytes of two-byte characters), a local identity's name
  (a-z 0-9 . _ - only: MAX_NAME_LENGTH bytes at most, within 4 x MAX_NAME_LENGTH) all read back.
- Rows an older troth wrote: an issued credential recorded before the `credential` column (a
  VC's, or schema < its migration: NULL) reads as no encoding, not as damage.
"""

from __future__ import annotations

import pytest

from tests.test_review71c_rows import node_db  # noqa: F401 - a fixture
from troth import limits
from troth.authority.tickets import TICKET_PREFIX
from troth.credentials.format import SignedCredential
from troth.names import check_name
from troth.storage import (
    PendingEnrollmentRecord,
    SqliteAuthorityStore,
    SqliteCredentialStore,
    SqliteDatabase,
)


def test_the_largest_issued_credential_reads_back(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """An issued credential at its largest (body MAX_CREDENTIAL_BYTES, attestation
    MAX_ATTESTATION_BYTES: larger than any troth makes) is within 71k's bound and reads back;
    one recorded with no encoding (a VC's, an older troth's row) reads as None."""
    body = b"b" * limits.MAX_CREDENTIAL_BYTES
    encoded = SignedCredential(body, b"s" * 64, b"a" * limits.MAX_ATTESTATION_BYTES).encode()
    store = SqliteAuthorityStore(node_db)
    store.record_issued(b"\x01" * 32, b"\x02" * 32, 10, 5, encoded)
    store.record_issued(b"\x03" * 32, b"\x02" * 32, 10, 5)
    assert store.issued_credential(b"\x01" * 32) == encoded
    assert store.issued_credential(b"\x03" * 32) is None


def test_the_largest_pending_enrollment_reads_back(
    node_db: SqliteDatabase,  # noqa: F811 - the fixture imported above
) -> None:
    """The longest ticket text troth stores (`str(Ticket)` of MAX_TICKET_BYTES) and an address
    of MAX_TICKET_BYTES bytes of two-byte characters read back."""
    ticket = TICKET_PREFIX + "A" * (limits.MAX_TICKET_BYTES * 4 // 3 + 4)
    address = "/tcp/" + "é" * ((limits.MAX_TICKET_BYTES - 5) // 2)
    assert len(ticket.encode()) <= limits.MAX_TICKET_TEXT
    assert len(address.encode()) <= limits.MAX_TICKET_BYTES
    store = SqliteCredentialStore(node_db)
    record = PendingEnrollmentRecord(b"\x01" * 32, b"\x02" * 32, ticket, address, 5)
    store.put_pending(record)
    assert store.list_pending(b"\x01" * 32) == [record]


def test_no_name_passes_its_byte_bound() -> None:
    """A name is a-z 0-9 . _ - (one byte each): one at MAX_NAME_LENGTH is accepted, a
    non-ASCII one refused, so none reaches 4 x MAX_NAME_LENGTH bytes."""
    assert check_name("a" * limits.MAX_NAME_LENGTH)
    for name in ("é" * limits.MAX_NAME_LENGTH, "a" * (limits.MAX_NAME_LENGTH + 1)):
        with pytest.raises(ValueError, match="invalid name"):
            check_name(name)
