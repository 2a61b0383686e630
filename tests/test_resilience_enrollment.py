"""Crash-safe enrollment (issue 9, item 1), with real processes killed at every crash point:
the CLI with an authority on the same machine, and a holder enrolling over TCP with a running
hub. After each crash: exactly the expected state (credential held, enrollment pending,
redemptions), then a recovery that ends with the member holding the one credential its
redemption issued; the authority never issues a second credential for one redemption.
The runs that are not to crash run in this process (tests.support.cli, `recovered`): the same
commands, without an interpreter started for each (71m, ci)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import enroll_driver
from tests.support.cli import run_json, start_here, stop_here
from tests.support.processes import until_ended
from troth.credentials import Attributes
from troth.faults import CRASH_ENV, CRASH_EXIT_CODE
from troth.identity import Identifier
from troth.node import init_node, open_node
from troth.storage import SqliteAuthorityStore

HOLDER_POINTS = (
    "holder.enroll.before-pending",
    "holder.enroll.after-pending",
    "holder.enroll.before-commit",
    "holder.enroll.after-commit",
)
AUTHORITY_POINTS = ("authority.enroll.before-commit", "authority.enroll.after-commit")
# what a crash at each point leaves: (credentials held, enrollments pending, redemptions)
LEFT = {
    "holder.enroll.before-pending": (0, 0, 0),
    "holder.enroll.after-pending": (0, 1, 0),
    "authority.enroll.before-commit": (0, 1, 0),
    "authority.enroll.after-commit": (0, 1, 1),
    "holder.enroll.before-commit": (0, 1, 1),
    "holder.enroll.after-commit": (1, 0, 1),
}


def now() -> int:
    return int(time.time())


def run(
    command: list[str], *, crash: str | None = None, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash is not None:
        env[CRASH_ENV] = crash
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=90, env=env
    )
    if code is not None:
        assert result.returncode == code, (command, crash, result.stdout, result.stderr)
    return result


def troth(
    *args: str, crash: str | None = None, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    return run(["-m", "troth.cli.main", *args], crash=crash, code=code)


def driver(
    ticket: str, *, crash: str | None = None, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    return run(
        ["-m", "tests.support.enroll_driver", "agent", "agent", ticket], crash=crash, code=code
    )


def recovered(ticket: str) -> dict[str, object]:
    """The holder's enrollment over TCP (`driver`, with "--resume" to resume), run in this
    process since it is not to crash: its JSON."""
    return asyncio.run(enroll_driver.run("agent", "agent", ticket))


@dataclass
class Enrollment:
    ticket: str
    member: Identifier

    def state(self) -> tuple[int, int, int]:
        """(credentials the member holds, its pending enrollments, redemptions it made)."""
        with open_node("agent") as holder, open_node("acme") as acme:
            held = len(holder.wallet.held("agent"))
            pending = len(holder.wallet.pending_enrollments("agent"))
            redemptions = SqliteAuthorityStore(acme.db).count_redemptions(self.member.digest)
        return held, pending, redemptions

    def check_enrolled_once(self) -> None:
        """The member holds exactly the credential its one redemption issued, and the
        authority issued no other."""
        with open_node("agent") as holder, open_node("acme") as acme:
            held = [h.id for h in holder.wallet.held("agent")]
            store = SqliteAuthorityStore(acme.db)
            issued = store.unexpired_issued(self.member.digest, now())
            assert store.count_redemptions(self.member.digest) == 1
            assert not holder.wallet.pending_enrollments("agent")
        assert held == issued, (held, issued)
        assert len(issued) == 1


def prepare(address: str) -> Enrollment:
    """Nodes `acme` (authority) and `agent` (identity `agent`), and a one-use ticket."""
    init_node("acme")
    init_node("agent")
    with open_node("acme") as acme, open_node("agent") as agent:
        authority = acme.create_authority("acme", now=now())
        member = agent.identities.create(now=now(), name="agent").identifier
        ticket = authority.create_ticket(
            creator=authority.identifier,
            attributes=Attributes({"team.name": "x"}),
            address=address,
            now=now(),
        )
    return Enrollment(str(ticket), member)


# -- local: the CLI runs both sides --------------------------------------------------------------


@pytest.mark.parametrize("point", [*HOLDER_POINTS[:2], *AUTHORITY_POINTS, *HOLDER_POINTS[2:]])
def test_local_enrollment_survives_a_crash_at(point: str) -> None:
    setup = prepare("node:acme")
    crashed = troth(
        "enroll", setup.ticket, "--as", "agent", "--node", "agent", crash=point, code=None
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr  # the point was reached
    assert setup.state() == LEFT[point]
    again = run_json("enroll", setup.ticket, "--as", "agent", "--node", "agent")
    assert again["identity"] == "agent"
    setup.check_enrolled_once()
    if LEFT[point][1]:  # an interrupted enrollment was resumed, and said so
        assert again["resumed_from"] is not None


def test_credential_refresh_resumes_an_interrupted_enrollment() -> None:
    setup = prepare("node:acme")
    troth(
        "enroll",
        setup.ticket,
        "--as",
        "agent",
        "--node",
        "agent",
        crash="holder.enroll.before-commit",
        code=CRASH_EXIT_CODE,
    )
    data = run_json("credential", "refresh", "agent", "--node", "agent")
    assert len(data["resumed"]) == 1
    with open_node("agent") as holder, open_node("acme") as acme:
        assert not holder.wallet.pending_enrollments("agent")
        assert SqliteAuthorityStore(acme.db).count_redemptions(setup.member.digest) == 1
        assert len(holder.wallet.held("agent")) == 2  # the redemption's, and the refreshed one


def test_enrolling_again_is_safe() -> None:
    """Re-running a completed enrollment answers the credential already issued: no second
    use of the ticket, no second credential (so a killed command can simply be run again)."""
    setup = prepare("node:acme")
    first = run_json("enroll", setup.ticket, "--as", "agent", "--node", "agent")
    second = run_json("enroll", setup.ticket, "--as", "agent", "--node", "agent")
    assert first["credential"] == second["credential"]
    assert second["resumed_from"] is None
    setup.check_enrolled_once()


# -- over TCP: a running hub hosts the authority ---------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Hub:
    port: int

    @property
    def route(self) -> str:
        return f"/tcp/127.0.0.1:{self.port}"

    def start(self, crash: str | None = None) -> None:
        """`troth node start acme` (run in this process, 73f ci: the hub is the node process it
        spawns, armed to crash at `crash`)."""
        armed = {} if crash is None else {CRASH_ENV: crash}
        start_here("acme", "--tcp-listen", f"127.0.0.1:{self.port}", **armed)

    def stop(self) -> None:
        stop_here("acme")

    def wait_dead(self, home: Path) -> None:
        """Wait for a hub that crashed to end (its pid file names it): gone, or a zombie that
        init has yet to reap (`until_ended`)."""
        until_ended(int((home / "nodes" / "acme" / "node.pid").read_text()))


@pytest.fixture
def hub(troth_home: Path) -> Iterator[Hub]:
    running = Hub(free_port())
    yield running
    stop_here("acme")


@pytest.mark.parametrize("point", HOLDER_POINTS)
def test_tcp_enrollment_survives_a_holder_crash_at(point: str, hub: Hub) -> None:
    setup = prepare(hub.route)
    hub.start()
    assert driver(setup.ticket, crash=point, code=None).returncode == CRASH_EXIT_CODE
    assert setup.state() == LEFT[point]
    resume = LEFT[point][1] == 1
    done = recovered("--resume" if resume else setup.ticket)
    assert done["identity"] == "agent"
    setup.check_enrolled_once()
    with open_node("agent") as holder:  # the authority is trusted at the ticket's route
        assert holder.wallet.trusted() == {setup_authority(): hub.route}


def setup_authority() -> Identifier:
    with open_node("acme") as acme:
        return acme.authority().identifier


@pytest.mark.parametrize("point", AUTHORITY_POINTS)
def test_tcp_enrollment_survives_an_authority_crash_at(
    point: str, hub: Hub, troth_home: Path
) -> None:
    setup = prepare(hub.route)
    hub.start(crash=point)
    failed = driver(setup.ticket, code=None)
    assert failed.returncode not in (0, CRASH_EXIT_CODE), failed.stderr  # no answer came
    hub.wait_dead(troth_home)
    assert setup.state() == LEFT[point]
    hub.start()
    done = recovered("--resume")
    assert done["resumed_from"] is not None
    setup.check_enrolled_once()
