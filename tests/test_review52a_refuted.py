"""Review 52a: attacks tried that the code already refuses (passing tests)."""

from __future__ import annotations

import pytest

from troth.errors import DecodeError
from troth.trace.submit import Status, SubmitResult


@pytest.mark.parametrize("status", [Status.APPENDED, Status.ALREADY])
@pytest.mark.parametrize("index", [-1, -(2**64)])
def test_a_negative_index_from_the_service_is_refused(status: Status, index: int) -> None:
    """Anchor 4: `SubmitResult.from_cbor` reads the index with `cbor.expect_int`, whose
    minimum is 0: a negative index is a DecodeError, not a receipt."""
    with pytest.raises(DecodeError, match="below 0"):
        SubmitResult.from_cbor([int(status), index])
