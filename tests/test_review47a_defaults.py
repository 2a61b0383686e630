"""Review 47a, defaults 1: `troth policy bundle create` without --ttl asked for a 7 d bundle,
which a policy-admin whose credential came from a default ticket (1 h, DEFAULT_CREDENTIAL_TTL)
could never sign ("a bundle does not outlive its signer's chain"), nor the authority in the
last 6 days of its 30 d signing key (renewed with a day left: "not past its key"). Left to
its default, a bundle lives 7 d or until its signer's key or chain expires, whichever is
first (`sign_bundle_as`, `troth.gates.default_bundle_ttl`), and says when; an explicit --ttl
past either is still refused.

Defaults 2: a member's VC said `validUntil` the authority's credential ttl on, past the
signing key that verifies it, where its CBOR credential ends with that key.

The clock is stepped by hand (`SystemClock.now`), so which second each step falls in is the
test's choice: the race review 45a's test lost on CI (a bundle as long as the admin's
credential, signed one second after it was issued) is shown here, not left to chance."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_json
from tests.support.gates import ADMIN, POLICIES, TOOLS, T, make_world
from troth.authority.core import DEFAULT_CREDENTIAL_TTL
from troth.clock import FixedClock, SystemClock
from troth.credentials import CredentialChain, issue_credential
from troth.errors import PolicyError, PolicyFailure
from troth.gates import DEFAULT_POLICY_BUNDLE_TTL, create_bundle, decode_bundle, default_bundle_ttl

DAY = 86_400


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    """The CLI's clock (and every SystemClock), moved only by the test."""
    fixed = FixedClock(int(time.time()))
    monkeypatch.setattr(SystemClock, "now", lambda _self: fixed.now())
    return fixed


@pytest.fixture
def admin(clock: FixedClock, tmp_path: Path) -> int:
    """Authority acme and member `admin` (troth.role=policy-admin, a default ticket's
    credential); when the admin's credential was issued."""
    run_json("authority", "create", "acme")
    run_json("identity", "create", "admin")
    ticket = run(
        "authority", "ticket", "create", "--authority", "acme", "--attr", "troth.role=policy-admin"
    )
    run("enroll", ticket.stdout.strip(), "--as", "admin")
    (tmp_path / "policies").write_text(POLICIES)
    (tmp_path / "tools").write_text(json.dumps(TOOLS))
    return clock.now()


def _create(tmp_path: Path, signer: str, revision: int, *extra: str, code: int = 0) -> Any:
    return run_json(
        "policy",
        "bundle",
        "create",
        "--policies",
        str(tmp_path / "policies"),
        "--tools",
        str(tmp_path / "tools"),
        "--revision",
        str(revision),
        "--authority",
        "acme",
        "--as",
        signer,
        "--out",
        str(tmp_path / f"{signer}-{revision}.bundle"),
        *extra,
        code=code,
    )


def test_a_bundle_as_long_as_the_admins_credential_loses_the_second_race(
    admin: int, clock: FixedClock, tmp_path: Path
) -> None:
    """What failed CI (review 45a's test, 1 h): the admin's credential expires at issue + 1 h,
    so a 1 h bundle signed a second later outlives it, and is refused."""
    clock.advance(1)
    refused = _create(tmp_path, "admin", 1, "--ttl", "1h", code=1)
    assert "does not outlive its signer's chain" in refused["detail"]
    assert str(admin + DEFAULT_CREDENTIAL_TTL) in refused["detail"]


def test_a_policy_admins_default_bundle_lives_until_its_chain_expires(
    admin: int, clock: FixedClock, tmp_path: Path
) -> None:
    clock.advance(1)  # a second after the credential: the bundle still ends with it
    made = _create(tmp_path, "admin", 1)
    assert (made["issued_at"], made["expires_at"]) == (admin + 1, admin + DEFAULT_CREDENTIAL_TTL)
    run_json("policy", "push", str(tmp_path / "admin-1.bundle"))  # verified, and held
    (held,) = run_json("policy", "show")
    assert (held["expires_at"], held["in_force"]) == (admin + DEFAULT_CREDENTIAL_TTL, True)


def test_an_explicit_ttl_past_the_chain_is_still_refused(
    admin: int, clock: FixedClock, tmp_path: Path
) -> None:
    refused = _create(tmp_path, "admin", 1, "--ttl", "7d", code=1)
    assert "does not outlive its signer's chain" in refused["detail"]
    assert not (tmp_path / "admin-1.bundle").exists()


def test_the_authoritys_default_bundle_lives_seven_days(
    admin: int, clock: FixedClock, tmp_path: Path
) -> None:
    made = _create(tmp_path, "acme", 1, "--node", "acme")
    assert made["expires_at"] - made["issued_at"] == DEFAULT_POLICY_BUNDLE_TTL == 7 * DAY


def test_the_authoritys_default_bundle_ends_with_its_signing_key(
    admin: int, clock: FixedClock, tmp_path: Path
) -> None:
    """The authority's 30 d signing key is renewed with a day left: 25 days in, it has 5 left,
    and a 7 d bundle would outlive it."""
    made = _create(tmp_path, "acme", 1, "--node", "acme")  # its signing key made now
    clock.advance(25 * DAY)
    late = _create(tmp_path, "acme", 2, "--node", "acme")
    assert late["expires_at"] - late["issued_at"] == 5 * DAY
    assert late["expires_at"] == made["issued_at"] + 30 * DAY
    refused = _create(tmp_path, "acme", 3, "--node", "acme", "--ttl", "7d", code=1)
    assert "not past its key" in refused["detail"]


def test_the_default_ttl_is_the_shortest_of_seven_days_the_key_and_the_chain() -> None:
    world = make_world()
    authority = world.authority.identifier
    credential = issue_credential(
        world.authority.signer, subject=world.admin.identifier, attributes=ADMIN, now=T,
        ttl=3600, depth=0,
    )  # fmt: skip
    chain = CredentialChain((credential,), (world.authority.identity.history,)).encode()
    admin = world.admin.signer
    assert default_bundle_ttl(admin, authority=authority, now=T + 1, chain=chain) == 3599
    bundle = create_bundle(
        admin, authority=authority, policies=POLICIES, schema="", tools=TOOLS, revision=1,
        now=T + 1, ttl=3599, chain=chain,
    )  # fmt: skip
    assert decode_bundle(bundle).expires_at == T + 3600  # what create_bundle takes
    assert default_bundle_ttl(world.authority.signer, authority=authority, now=T) == 7 * DAY
    late = world.authority.signer.expires_at - DAY
    assert default_bundle_ttl(world.authority.signer, authority=authority, now=late) == DAY
    with pytest.raises(PolicyError) as refused:  # a support agent's chain makes no admin
        default_bundle_ttl(
            world.support.signer, authority=authority, now=T, chain=world.support_chain
        )
    assert refused.value.reason is PolicyFailure.NOT_POLICY_ADMIN


def test_a_members_vc_ends_with_the_authoritys_key_like_its_credential(troth_home: Path) -> None:
    """Defaults 2: an authority whose credential ttl (here 40 d) is longer than what its
    30 d signing key has left issued CBOR credentials ending with the key
    (`issue_credential`) but VCs saying `validUntil` 40 d on: no verifier accepts such a VC
    once the key has expired (`troth_resolver` checks the attestation at its `now`), so its
    holder and verifiers were told a lifetime it never had."""
    from troth.authority.client import enroll_request
    from troth.credentials import Attributes, CredentialBody
    from troth.credentials.vc import parse_xsd_datetime
    from troth.node import init_node, open_node

    init_node("auth")
    init_node("agents")
    with open_node("auth") as auth_node, open_node("agents") as agents:
        authority = auth_node.create_authority("acme", now=T, credential_ttl=40 * DAY)
        ticket = authority.create_ticket(
            creator=authority.identifier, attributes=Attributes({"agents.team": "x"}),
            address="node:auth", now=T,
        )  # fmt: skip
        alice = agents.identities.create(now=T, name="alice").identifier
        authority.enroll(enroll_request(agents.identities, "alice", ticket, now=T), now=T)
        now = T + 20 * DAY  # the key made at T expires at T + 30 d
        chain = authority.issue_member_credential(alice, now=now)
        ends = CredentialBody.decode(chain.credentials[-1].body).expires_at
        document = authority.issue_member_vc(alice, now=now)
    assert ends == T + 30 * DAY
    assert parse_xsd_datetime(document["validUntil"], "validUntil") == ends
