"""Review 70k (wave1a: 70a's kept channel keys, 70e's NAT64 loopback source): attacks that
did not work, kept as passing tests."""

from __future__ import annotations

import pytest

from tests.conftest import SoftHsm
from tests.support.hsm import agent_node_fixture  # noqa: F401  (the fixture `node`)
from tests.test_review70a_chkeys import _bounded_pages
from tests.test_review70k_wave1a import rotated_past_planted
from troth import limits
from troth.errors import ConfigError
from troth.identity.retired_keys import RETIRED_KEYS_PER_CALL
from troth.node import Node, shown_identity
from troth.node.channel_limits import ChannelLimits
from troth.storage import IdentityStore
from troth.transport.connection import LOOPBACK_SOURCE, source_host, source_network


def _planted(kind: str, n: int, owner: str) -> object:
    """Planted `retired_keys` row `n` of `kind`."""
    if kind == "integer":  # TEXT affinity stores it as text
        return 10**12 + n
    if kind == "real":  # likewise
        return n + 0.5
    if kind == "nul":  # a kept record of the owner holding a NUL
        return f"~1.{owner}~\x00{n:04d}"
    return f"~1.{owner}~x\x00{n:04d}"  # two records alike up to their NUL


@pytest.mark.parametrize("kind", ["integer", "real", "nul", "nul-alike"])
def test_typed_and_nul_records_page_and_go(
    softhsm: SoftHsm, node: Node, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Tried: RETIRED_KEYS_PER_CALL + 1 `retired_keys` rows of other types than TEXT (INTEGER,
    REAL: the column's TEXT affinity stores them as text) or texts holding a NUL (two alike up
    to it), to make a compromised rotation read one page for ever (70a, chkeys 2's kind) or
    fail it. The rotation reads a bounded number of pages and deletes the kept key;
    `forget_retired` drops every planted row (none names a key)."""
    store = node.identities.store

    def plant(store: IdentityStore, owner: str) -> None:
        db = store._db  # type: ignore[attr-defined]
        with store.transaction():
            for n in range(RETIRED_KEYS_PER_CALL + 1):
                db.execute("INSERT INTO retired_keys VALUES (?)", (_planted(kind, n, owner),))
        _bounded_pages(store, monkeypatch)

    later = rotated_past_planted(node, plant)
    monkeypatch.undo()
    for _ in range(4):  # 257 rows: two calls' worth (bounded: a row never dropped fails)
        node.identities.forget_retired(now=later + limits.RETIRED_CHANNEL_KEY_GRACE)
    assert store.retired_key_records(10) == []


def test_no_handshake_timeout_past_the_bound_by_environment_or_api() -> None:
    """Tried: a handshake timeout past MAX_HANDSHAKE_TIMEOUT through the environment
    (`TROTH_CHANNELS_HANDSHAKE_TIMEOUT`, as a node's config sets it), the Python API and
    `dataclasses.replace` (every ChannelLimits the node's channels read passes its checks;
    relayed and resumed handshakes run under the same node's limits). Refused each way; the
    bound itself is taken."""
    import dataclasses

    bound = limits.MAX_HANDSHAKE_TIMEOUT
    env = {"TROTH_CHANNELS_HANDSHAKE_TIMEOUT": str(bound + 0.5)}
    with pytest.raises(ConfigError, match="handshake_timeout"):
        ChannelLimits.from_environment(env)
    with pytest.raises(ValueError, match="handshake_timeout"):
        ChannelLimits(handshake_timeout=bound + 0.001)
    with pytest.raises(ValueError, match="handshake_timeout"):
        dataclasses.replace(ChannelLimits(), handshake_timeout=float(bound + 1))
    with pytest.raises(ValueError, match="handshake_timeout"):
        ChannelLimits(handshake_timeout=float("nan"))
    env = {"TROTH_CHANNELS_HANDSHAKE_TIMEOUT": str(bound)}
    assert ChannelLimits.from_environment(env).handshake_timeout == bound


def test_identity_cache_is_one_value_wherever_imported() -> None:
    """Tried: an importer of IDENTITY_CACHE from its old home (troth.node.shown_identity,
    whose `__all__` names it) broken by its move to troth.limits. Both name the one value,
    and the bound is the grace less it."""
    assert shown_identity.IDENTITY_CACHE is limits.IDENTITY_CACHE
    assert "IDENTITY_CACHE" in shown_identity.__all__
    assert limits.MAX_HANDSHAKE_TIMEOUT == limits.RETIRED_CHANNEL_KEY_GRACE - limits.IDENTITY_CACHE
    assert ChannelLimits().handshake_timeout <= limits.MAX_HANDSHAKE_TIMEOUT


@pytest.mark.parametrize(
    "host",
    [
        "::127.0.0.1",  # IPv4-compatible (deprecated, RFC 4291 2.5.5.1)
        "::ffff:0:127.0.0.1",  # SIIT's IPv4-translated (RFC 2765)
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1 (bits inverted)
        "fe80::5efe:7f00:1%eth0",  # ISATAP, link-local
        "2001:db8::5efe:127.0.0.1",  # ISATAP, global
        "64:ff9b::ffff:127.0.0.1",  # in the NAT64 /48, outside its /96
    ],
)
def test_other_spellings_of_a_127_are_remote_sources_apart(host: str) -> None:
    """Tried: an IPv6 spelling holding a 127.x other than NAT64's (70e, sources 1) that lands on
    LOOPBACK_SOURCE or its network, so a remote party spends the local nodes' source. Each is
    a source apart, of a network apart, as docs/protocols.md says (6to4 its /48, Teredo its
    client, anything else its /64)."""
    source = source_host(host)
    assert source != LOOPBACK_SOURCE
    assert source_network(source) != source_network(LOOPBACK_SOURCE)


def test_embedded_ipv4_spellings_fan_out_to_no_more_sources() -> None:
    """Tried: the IPv4-compatible and SIIT spellings, each IPv4 address a source of its own
    (2**32 of them, as 68b's 127/8 was). Each spelling is one /64 source for every address."""
    for prefix in ("::", "::ffff:0:"):
        sources = {source_host(f"{prefix}{a}.{b}.0.{b}") for a in (1, 127, 203) for b in (1, 9)}
        assert len(sources) == 1, prefix


def test_the_translated_loopback_bucket_is_not_the_local_networks() -> None:
    """Tried: the /104 a translated 127.x counts as (70e) sharing a network with the local
    nodes' source or another translator's IPv4 clients, so a remote translator's peers spend
    their network share. Its network is its translator prefix's /48, apart from both."""
    translated = source_network(source_host("64:ff9b::7f00:1"))
    assert translated != source_network(LOOPBACK_SOURCE)
    assert translated != source_network(source_host("64:ff9b::c633:6407"))  # 198.51.100.7
    assert source_host("64:ff9b::7f00:1") == source_host("64:ff9b::7fff:fffe")
