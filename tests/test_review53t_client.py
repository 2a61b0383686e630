"""Review 53t, client 1 (found by 53t, fixed after): a broker answering `renew` or `revoke` with
something that is not a mapping (a hostile broker the agent chose, or a damaged one) made
`BrokerClient` raise `AttributeError` (`answer.get`) instead of the layer's `RemoteError`
"a malformed broker answer", as every other malformed answer is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from troth.errors import RemoteError
from troth.node.services.broker import BrokerClient
from troth.secrets.lease import LeaseId


class _Answering(BrokerClient):
    """A client whose broker answers `answer` to every call (no channel, no runtime)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def _call(self, method: str, arguments: Any) -> Any:
        return self.answer


LEASE = LeaseId.new(1_800_000_000)


@pytest.mark.parametrize("answer", [["lease"], "lease", 7, None, b"lease"])
def test_a_renew_answer_that_is_no_mapping_is_a_remote_error(answer: Any) -> None:
    with pytest.raises(RemoteError, match="malformed broker answer"):
        asyncio.run(_Answering(answer).renew(LEASE))


@pytest.mark.parametrize("answer", [["lease"], "lease", 7, None, b"lease"])
def test_a_revoke_answer_that_is_no_mapping_is_a_remote_error(answer: Any) -> None:
    with pytest.raises(RemoteError, match="malformed broker answer"):
        asyncio.run(_Answering(answer).revoke(LEASE))


def test_a_mapping_without_the_lease_is_a_remote_error() -> None:
    """The control: a mapping missing its members was already refused by the decoder."""
    with pytest.raises(RemoteError, match="malformed broker answer"):
        asyncio.run(_Answering({}).revoke(LEASE))
