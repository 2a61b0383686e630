"""Review 49a, threads 1: two threads delegating through one `Node`. Every delegation is
recorded in the node's trace log as the next record of the delegator (per-agent sequence
numbers, each record chained to the one before). `Node.delegate` read the delegator's last
record, signed the next one, then appended it; a delegation by another thread that appended in
between made the append refused (CHAIN_BROKEN: "seq 10 does not follow seq 10"), and after
three such losses `delegate` raised a TraceError: for a delegation that was made, signed, and
handed to no one. Four threads delegating as one identity met it within twenty delegations.
Records of one node made through the API are now made one at a time in a process."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import troth
import troth.trace.recorder
import troth.trace.signing

_READ = {"orders.access": "read"}


def test_a_delegation_another_thread_records_beside_is_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        sub, other = agents.identities.create("sub"), agents.identities.create("other")
        agents.enroll(acme.ticket(_READ), identity=customer)
        me = threading.get_ident()
        others: list[threading.Thread] = []
        failures: list[BaseException] = []
        real = troth.trace.signing.sign_next

        def delegate_beside() -> None:
            try:
                agents.delegate(customer, to=other, attributes=_READ, ttl=60, purpose="beside")
            except BaseException as exc:  # reported below
                failures.append(exc)

        def sign_next(*args: Any, **kwargs: Any) -> Any:
            # this thread has read the delegator's last record: another thread delegates now
            # (it waits, once it is made to, until this thread's record is in)
            if threading.get_ident() == me and len(others) < 3:
                others.append(threading.Thread(target=delegate_beside))
                others[-1].start()
                others[-1].join(timeout=1.0)
            return real(*args, **kwargs)

        monkeypatch.setattr(troth.trace.recorder, "sign_next", sign_next)
        chain = agents.delegate(customer, to=sub, attributes=_READ, ttl=60, purpose="mine")
        for thread in others:
            thread.join()
        assert failures == []
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        assert verifier.verify(chain, presenter=sub).actor == sub.identifier


def test_threads_sharing_one_node_and_one_verifier() -> None:
    """Four threads creating identities, delegating as one identity and verifying through one
    `Node` and one `Verifier` (each thread its own SQLite connection; the verifier's cache under
    a lock; the records one at a time): every call succeeds."""
    with troth.Node.open("hub") as hub, troth.Node.open("agents") as agents:
        acme = hub.create_authority()
        customer = agents.identities.create("customer")
        agents.enroll(acme.ticket(_READ), identity=customer)
        verifier = troth.Verifier(trust=[acme.identifier], feeds=acme)
        failures: list[BaseException] = []

        def work(number: int) -> None:
            try:
                for round_ in range(5):
                    made = agents.identities.create(f"t{number}-{round_}")
                    chain = agents.delegate(
                        customer, to=made, attributes=_READ, ttl=60, purpose="p"
                    )
                    assert verifier.verify(chain, presenter=made).actor == made.identifier
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        names = {i.name for i in agents.identities.all()}
        assert {f"t{n}-{r}" for n in range(4) for r in range(5)} <= names
