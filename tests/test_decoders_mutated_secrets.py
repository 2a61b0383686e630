"""Mutation fuzzing of the decoders of the broker service's messages (docs/protocols.md,
"Broker service"; troth.secrets.wire): the arguments of each method, which the broker reads from
any authenticated peer, and the answers, which an agent reads from the broker, at the limits
too (tests/support/limit_mutations.py: as many scopes and headers as a message may carry, and
one more), and those arguments served by a broker's endpoint to a credentialed agent. The
lease ids, tokens, JWKS and sealed blobs: tests/test_decoders_mutated_channel.py.

The mutations and the rule every property checks: tests/support/decoder_vectors.py. The
messages are canonical CBOR values in the service protocol: what decodes encodes again to the
same value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import NOW
from tests.support.decoder_vectors import ED, SECRETS
from tests.support.leases import make_world, open_broker
from tests.support.limit_mutations import QUICK, hostile, values
from tests.support.mutations import mutated, typed
from troth import limits
from troth.encoding import cbor
from troth.encoding.ijson import load_json
from troth.errors import DecodeError, DecodeProblem, SecretError, SecretFailure
from troth.secrets import AllowListPolicy, wire
from troth.secrets.endpoint import BrokerCaller, BrokerEndpoint
from troth.secrets.engine import Engine, parse_spec
from troth.secrets.engines.http_inject import HttpInjectEngine, HttpRequest
from troth.secrets.engines.postgres import PostgresEngine
from troth.secrets.engines.token import TokenEngine
from troth.secrets.lease import LeaseId, LeaseRequest

LEASE_ID = LeaseId.parse(SECRETS["lease"]["text"])
LEASE = {
    "handle": SECRETS["lease"]["handle"],
    "identity": ED["identifier"],
    "secret": "payments-api",
    "engine": "http-inject",
    "scope": ["refund", "status"],
    "credential": "5e" * 32,
    "authority": ED["identifier"],
    "issued_at": 1767225600,
    "expires_at": 1767225900,
    "ttl": 300,
    "max_ttl": 3600,
    "renewable_until": 1767229200,
    "state": "revoked",
    "state_at": 1767225700,
    "end_reason": "identity_revoked",
}
ARGUMENTS: dict[str, tuple[Callable[[Any], Any], Any]] = {
    "issue": (
        wire.IssueArgs.from_wire,
        wire.IssueArgs("payments-api", ("refund",), 300, LeaseRequest(b"\x01" * 16, 2)),
    ),
    "renew": (wire.LeaseArgs.from_wire, wire.LeaseArgs(LEASE_ID, 300)),
    "list": (wire.ListArgs.from_wire, wire.ListArgs(True)),
    "revoke-identity": (
        wire.RevokeIdentityArgs.from_wire,
        wire.RevokeIdentityArgs.from_wire({"identity": ED["identifier"]}),
    ),
    "forward": (
        wire.ForwardArgs.from_wire,
        wire.ForwardArgs(LEASE_ID, HttpRequest("POST", "/v1/refunds", (("a", "b"),), b"{}")),
    ),
}


@pytest.mark.parametrize("method", sorted(ARGUMENTS))
@QUICK
@given(data=st.data())
def test_broker_arguments(method: str, data: st.DataObject) -> None:
    """A method's arguments mutated: read (they encode again to the same value), or
    DecodeError (a `failed` answer)."""
    read, arguments = ARGUMENTS[method]
    original = cbor.encode(arguments.to_wire())
    mutant = data.draw(hostile(original))
    typed(
        lambda b: read(cbor.decode(b)),
        mutant,
        valid_if=lambda a: cbor.encode(a.to_wire()) == mutant,
    )


ANSWERS: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], Any] | None]] = {
    "lease": (wire.decode_lease, LEASE, wire.encode_lease),
    "list": (wire.decode_leases, {"leases": [LEASE, LEASE]}, None),
    "revoke-identity": (wire.decode_revoked, {"leases": [LEASE], "revoked": 2}, None),
    "issue": (
        wire.decode_issued,
        {"lease_id": LEASE_ID.text(), "lease": LEASE, "credential": {"token": "t", "n": 1}},
        None,
    ),
    "forward": (
        wire.decode_response,
        {"status": 200, "reason": "OK", "headers": [["a", "b"]], "body": b"{}"},
        wire.encode_response,
    ),
    "refusal": (wire.raise_refusal, {"refused": "NO_SUCH_LEASE", "detail": "no lease"}, None),
}


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@QUICK
@given(data=st.data())
def test_broker_answer(answer: str, data: st.DataObject) -> None:
    """An answer mutated: read (a lease or a forwarded response encodes again to the same
    value), or DecodeError, or the SecretError a refusal carries."""
    read, value, encode = ANSWERS[answer]
    original = cbor.encode(value)
    if answer != "refusal":  # (which raises the SecretError it carries)
        assert read(value) is not None
    mutant = data.draw(hostile(original))
    typed(
        lambda b: read(cbor.decode(b)),
        mutant,
        valid_if=None if encode is None else lambda v: cbor.encode(encode(v)) == mutant,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("credential", "5E" * 32),  # upper case
        ("credential", "5e" * 16),  # not a SHA-256
        ("credential", " 5e" * 32),  # spaces
        ("state", "Revoked"),
        ("end_reason", "IDENTITY_REVOKED"),
        ("identity", ED["did"]),
    ],
)
def test_a_lease_not_as_the_broker_writes_it_is_refused(field: str, value: str) -> None:
    """Found by test_broker_answer (review 54b, decoders 2): `decode_lease` read the chain's
    hash with `bytes.fromhex` (any case, spaces, any length: docs/protocols.md says its
    SHA-256), the state and end reason in any case and an identity in its DID form, so one
    lease had many encodings, and a hash that is none was taken."""
    assert wire.decode_lease(LEASE).chain_hash == bytes.fromhex(LEASE["credential"])
    with pytest.raises(DecodeError) as refused:
        wire.decode_lease({**LEASE, field: value})
    assert refused.value.problem is DecodeProblem.NON_CANONICAL or field == "credential"


# -- the broker's endpoint: each method's arguments, mutated, from a credentialed agent --------


@dataclass
class Served:
    endpoint: BrokerEndpoint
    caller: BrokerCaller
    lease_id: LeaseId


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """A broker over a node-like database holding a token secret `payments` every agent may
    lease, and agent B (credentialed by the authority) holding one lease of it."""
    world = make_world(NOW)
    policy = AllowListPolicy({world.agent_b.identifier: {"payments": None}})
    path = tmp_path_factory.mktemp("broker") / "node.db"
    _, broker = open_broker(path, now=NOW, policy=policy, quota=100_000)
    broker.put_secret("payments", "token", TOKEN_SECRET, b"", now=NOW)
    credential = world.credential_b()
    issued = broker.issue(credential, "payments", now=NOW)
    caller = BrokerCaller(world.agent_b.identifier, (credential,))
    return Served(BrokerEndpoint(broker), caller, issued.lease_id)


TOKEN_SECRET = {"scopes": ["refunds", "charges"], "ttl": 120, "max_ttl": 600, "audience": "pay"}


@settings(QUICK, suppress_health_check=list(HealthCheck))  # the module's broker
@given(data=st.data())
def test_broker_endpoint(served: Served, data: st.DataObject) -> None:
    """A method's arguments (its lease id the agent's) mutated, at the limits too, and served:
    an answer (maybe the broker's typed refusal), or DecodeError (a `failed` answer)."""
    method = data.draw(st.sampled_from(["issue", "renew", "revoke", "list", "jwks"]))
    arguments = {
        "issue": wire.IssueArgs("payments", ("refunds",), 60).to_wire(),
        "renew": wire.LeaseArgs(served.lease_id, 60).to_wire(),
        "revoke": wire.LeaseArgs(served.lease_id).to_wire(),
        "list": wire.ListArgs(True).to_wire(),
        "jwks": {},
    }[method]
    mutant = data.draw(values(cbor.encode(arguments)))
    answer = typed(
        lambda b: served.endpoint.handle(method, cbor_value(b), served.caller, NOW + 1), mutant
    )
    if isinstance(answer, dict) and "refused" in answer:
        typed(lambda _: wire.raise_refusal(answer), b"")


def cbor_value(data: bytes) -> Any:
    """`data` as the service protocol hands a request's arguments over: decoded within its
    limits (DecodeError past them, as the node answers such a request)."""
    return cbor.decode(data)


# -- a secret's configuration (`troth secret put`: the operator's JSON, for each engine) -------

SECRET_CONFIGS: dict[str, tuple[Engine, dict[str, Any]]] = {
    "token": (
        TokenEngine(lambda now: None),  # type: ignore[arg-type,return-value]  # (never signs)
        {"scopes": ["refunds"], "ttl": 120, "max_ttl": 600, "audience": "payments"},
    ),
    "http-inject": (
        HttpInjectEngine(),
        {
            "scopes": ["refunds:write", "orders:read"],
            "upstream": "https://payments.example/v1",
            "header": "Authorization",
            "rules": [
                {"methods": ["GET"], "path": "/v1/orders/*", "scope": "orders:read"},
                {"methods": ["POST"], "path": "/v1/refunds", "scope": "refunds:write"},
            ],
            "strip": ["X-Api-Key"],
            "grantable_by": [ED["identifier"]],
        },
    ),
    "postgres": (
        PostgresEngine("troth_"),
        {
            "scopes": ["orders:read"],
            "host": "127.0.0.1",
            "port": 5432,
            "dbname": "shop",
            "user": "troth",
            "templates": {"orders:read": "reader"},
            "sslmode": "disable",
        },
    ),
}


def read_config(engine: Engine, data: bytes) -> object:
    """What `Broker.put_secret` does with the configuration's text (no value stored)."""
    try:
        config = load_json(data, max_bytes=limits.MAX_SECRET_CONFIG_BYTES, what="config")
    except DecodeError:
        return None  # put_secret: SecretError CONFIG_INVALID
    return parse_spec("payments", engine, config)


@pytest.mark.parametrize("kind", sorted(SECRET_CONFIGS))
@QUICK
@given(data=st.data())
def test_secret_config(kind: str, data: st.DataObject) -> None:
    """A secret's configuration mutated: its spec, or SecretError CONFIG_INVALID."""
    engine, config = SECRET_CONFIGS[kind]
    original = json.dumps(config).encode()
    assert read_config(engine, original) is not None
    typed(lambda b: read_config(engine, b), data.draw(mutated(original, is_json=True)))


@pytest.mark.parametrize("sslmode", [["disable"], {"mode": "disable"}])
def test_a_postgres_sslmode_not_text_is_a_config_error(sslmode: object) -> None:
    """Found by test_secret_config (review 54b, decoders 4): an `sslmode` that is a list or an
    object let TypeError (unhashable) out of the postgres engine's check, past `troth secret
    put`, instead of CONFIG_INVALID naming the setting."""
    engine, config = SECRET_CONFIGS["postgres"]
    with pytest.raises(SecretError) as refused:
        parse_spec("payments", engine, {**config, "sslmode": sslmode})
    assert refused.value.reason is SecretFailure.CONFIG_INVALID
    assert "sslmode" in refused.value.detail
