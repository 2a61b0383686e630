"""Review 66s: attacks on this session's smaller fixes (66k's bounded copy, 66l's `_descends`,
66j's API argument checks, 66g's typed deletion) that did not work; each test fails if the
defence it names breaks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import troth
from tests.conftest import NOW
from tests.support.backups import feed_gone_back
from tests.support.histories import encode, extend, honest_history
from tests.support.public_api import acme_and_agents
from tests.test_vault_software import open_vault
from troth import limits
from troth.crypto import KeyType
from troth.encoding import cbor
from troth.errors import DecodeError, DecodeProblem, KeyNotFound
from troth.identity import Checkpoint, verify_history
from troth.node import init_node, open_node
from troth.node.trust import _revoke_again
from troth.vault import KeyHandle, KeyPurpose

# -- 66k: the general path's bounded read ---------------------------------------------------


class _Endless(Mapping[str, int]):
    """A map that says it has one entry and yields entries for ever, counting what was read."""

    def __init__(self) -> None:
        self.read = 0

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: str) -> int:
        return 0

    def __iter__(self) -> Iterator[str]:
        while True:
            self.read += 1
            yield str(self.read)


def test_an_endless_map_is_read_one_entry_past_the_budget_then_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The copy reads a map budget // 2 + 1 entries (one past what the limit leaves: 31 entries,
    62 items, fit a limit of 63 with the map itself), never more, and refuses it over the
    limit; a map of exactly the budget's entries is written, as the fast path writes it."""
    monkeypatch.setattr(limits, "MAX_CBOR_ENCODE_ITEMS", 64)
    endless = _Endless()
    with pytest.raises(DecodeError) as refused:
        cbor.encode(endless)
    assert refused.value.problem is DecodeProblem.OVER_LIMIT
    assert endless.read == 63 // 2 + 1
    exact = {str(n): n for n in range(31)}
    assert cbor.encode(_Fixed(exact)) == cbor.encode(exact)
    with pytest.raises(DecodeError) as over:
        cbor.encode(_Fixed({**exact, "31": 31}))
    assert over.value.problem is DecodeProblem.OVER_LIMIT


class _Fixed(Mapping[str, int]):
    """A map of no built-in type (the general path) over `entries`."""

    def __init__(self, entries: dict[str, int]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: str) -> int:
        return self.entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)


def test_a_generator_is_refused_unread() -> None:
    """A generator is no sequence: refused as a leaf cbor2 cannot write, not one item taken."""
    numbers = iter(range(10))
    with pytest.raises(DecodeError):
        cbor.encode({"k": (n for n in numbers)})
    assert next(numbers) == 0


# -- 66l: an honest owner on the gone-back line -----------------------------------------------


def test_the_owners_rotation_on_the_gone_back_line_is_not_published_over(
    troth_home: Path,
) -> None:
    """The held feed names (2, B); the store's line goes back past it; the owner rotates (3, C)
    on the gone-back line, the node storing its history (B and C in one copy): the re-revoke
    writes nothing (its (3, C) said (2, B)), the owner's history, whole or presented from
    change 2, accepted, the 2-change one refused. Had `_descends` refused it, (2, B) published
    again would be the newest: the history from change 2 refused ("after a gap")."""
    init_node("auth")
    with open_node("auth") as node:
        authority = node.create_authority("acme", now=NOW)
        first = honest_history(1, start=NOW - 10)
        two_h = extend(first, NOW - 6)
        two = verify_history(encode(two_h.changes), now=NOW)
        three = verify_history(encode(extend(two_h, NOW - 5).changes), now=NOW)
        start = authority.held_feed(now=NOW)
        authority.revocations.supersede(two, now=NOW, charged_to=authority.identifier)
        held = authority.held_feed(now=NOW, previous=start)
        feed_gone_back(authority, start.count)
        node.identities.import_history(three, now=NOW)
        authority.revocations.supersede(three, now=NOW, charged_to=authority.identifier)
        line = authority.held_feed(now=NOW)
        again = _revoke_again(authority, held, line, NOW)
        assert again is not None
        assert again.count == line.count  # nothing published again
        digest = three.identifier.digest
        again.check_current(three)
        again.check_current(three.from_checkpoint(Checkpoint(digest, digest, 2)))
        with pytest.raises(troth.CredentialError):
            again.check_current(two)


# -- 66j: what the CLI refuses, the API refuses ---------------------------------------------

_INJECT = {
    "upstream": "https://api.example/",
    "header": "X-Key",
    "rules": [{"methods": ["GET"], "path": "/a"}],
    "scopes": ["r"],
    "ttl": 60,
    "max_ttl": 60,
}
_POSTGRES = {
    "host": "127.0.0.1",
    "port": 5432,
    "user": "troth_admin",
    "dbname": "orders",
    "templates": {"r": "reader"},
    "scopes": ["r"],
    "ttl": 60,
}


@pytest.mark.parametrize(
    ("engine", "config", "said"),
    [("http-inject", _INJECT, "header"), ("postgres", _POSTGRES, "non-empty")],
    ids=["http-inject", "postgres"],
)
def test_an_upstream_secret_with_no_value_is_refused_by_the_api_too(
    troth_home: Path, engine: str, config: dict[str, object], said: str
) -> None:
    """`troth secret put --engine postgres|http-inject` with an empty value is refused; so is
    `Secrets.put` with its default `value=b""`, by the same check (the broker's), nothing
    stored."""
    with acme_and_agents() as world:
        with pytest.raises(troth.SecretError) as refused:
            world.hub.secrets.put("api", engine=engine, config=config)
        assert refused.value.reason is troth.SecretFailure.CONFIG_INVALID
        assert said in str(refused.value)
        with pytest.raises(troth.SecretError) as none:
            world.hub.secrets.jwks()
        assert none.value.reason is troth.SecretFailure.NOT_CONFIGURED


# -- 66g: the type every writer gives a row is the one delete asks -----------------------------


def test_a_batchs_keys_delete_by_their_own_type_only(tmp_path: Path) -> None:
    """A key batch writes its rows' types itself (not through `generate`): each key of each
    type is deleted by its own handle from a vault reading the rows, never by another type's."""
    db, vault = open_vault(tmp_path / "vault.db")
    with db.transaction():
        batch = vault.key_batch()
        made = [batch.generate(kind, KeyPurpose.PRIMARY) for kind in KeyType]
        batch.store()
    _db, reader = open_vault(tmp_path / "vault.db")
    for handle in made:
        other = next(kind for kind in KeyType if kind is not handle.key_type)
        with pytest.raises(KeyNotFound):
            reader.delete(KeyHandle(handle.vault, other, handle.key_id))
        reader.delete(handle)
        with pytest.raises(KeyNotFound):
            reader.delete(handle)
