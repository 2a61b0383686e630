"""Review 58h (adversarial review of review 58d's broker changes): findings, each first a
strict xfail."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NOW
from tests.support.leases import make_world
from tests.support.secret_checks import lease_state, token_broker
from troth.secrets.lease import LeaseState

TTL = 120
CONFIG: dict[str, object] = {"scopes": ["refunds"], "ttl": TTL, "max_ttl": 600, "audience": "p"}
DAY = 86_400
AHEAD = 3 * 3600


def test_secrets1_a_lease_lives_at_most_twice_its_term_across_a_suspend(tmp_path: Path) -> None:
    """review 58h, secrets 1: docs/secrets.md ("The broker's clock") says that behind its mark
    a lease lives at most twice its term. The node's clock three hours ahead once, then right again
    (behind the mark), the served broker sweeping every 5 s; a lease of 120 s issued, then the
    machine suspended for two hours (a laptop, a paused VM): at resume the clock has stepped
    forward 7200 s, more than limits.BROKER_CLOCK_JUMP, which review 58d, secrets 3 counts as
    a correction (no time gone by), so the broker's time has not moved and the lease is live
    two hours later, 60 times its term (before review 58d the step counted half: ended). The
    rule could not tell a suspend from an NTP correction by the wall clock alone; it now asks
    the machine's own count of the seconds gone by (CLOCK_BOOTTIME: suspensions included),
    here a fake one, and counts the step as far as it says (a correction: nothing, the 1970
    case of review 58d, secrets 3, whose test runs with the machine's real count)."""
    world = make_world(NOW, chain_ttl=DAY)
    broker = token_broker(tmp_path / "node.db", [world.agent_a.identifier], CONFIG, now=NOW)
    broker.sweep(NOW + AHEAD)  # the clock three hours ahead once
    broker.sweep(NOW)  # put right: three hours behind the broker's mark
    issued = broker.issue(world.credential_a(), "payments", now=NOW + 5)
    machine = [0.0]
    broker.clock.elapsed = lambda: machine[0]
    broker.sweep(NOW + 10)
    machine[0] += 7200
    broker.sweep(NOW + 10 + 7200)  # resumed after two hours
    broker.sweep(NOW + 15 + 7200)
    assert lease_state(broker, issued.lease.handle) is not LeaseState.ACTIVE
    broker.close()


def test_secrets1_a_correction_counts_only_the_seconds_the_machine_ran(tmp_path: Path) -> None:
    """The other side of review 58h, secrets 1: behind the mark, the clock reset near 1970 and
    then corrected by NTP 5 s later (by the machine's count): the step of decades counts those
    5 s at half pace, not the decades (review 58d, secrets 3)."""
    world = make_world(NOW)
    broker = token_broker(tmp_path / "node.db", [world.agent_a.identifier], CONFIG, now=NOW)
    machine = [0.0]
    broker.clock.elapsed = lambda: machine[0]
    broker.sweep(NOW + 3600)
    broker.sweep(1_000)
    machine[0] += 5
    broker.sweep(NOW)
    assert NOW + 3600 <= broker.clock.seen() <= NOW + 3600 + 3
    broker.close()
