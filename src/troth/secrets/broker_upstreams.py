"""The broker's upstream secrets and their revocation (troth.secrets.broker's `Broker` part):
an upstream secret unsealed only when an engine reveals it, under the configuration it was sealed
with; each engine's revocation of leases (failures left REVOKING for the sweep's retries, a
batch within a budget of engine time) and the orphan sweep (troth.secrets.orphans)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from troth.errors import SecretError, SecretFailure, TrothError
from troth.identity import Identifier
from troth.secrets.audit import AuditKind
from troth.secrets.book import LeaseBook
from troth.secrets.engine import Engine, SecretSpec
from troth.secrets.keys import BrokerKeys
from troth.secrets.lease import OPEN_STATES, Lease, SecretValue
from troth.secrets.orphans import OrphanSweep
from troth.secrets.store import SqliteSecretStore
from troth.secrets.sweep import BATCH_REVOKE_SECONDS, RetryBudget
from troth.secrets.upstreams import config_text as _config_text
from troth.secrets.upstreams import engine_call as _engine_call
from troth.secrets.upstreams import secret_aad as _secret_aad
from troth.vault import SealingVault

__all__ = ["BrokerUpstreams"]

log = logging.getLogger("troth.secrets.broker")

_F = SecretFailure


class _SealedUpstream(SecretValue):
    """An upstream secret unsealed only when an engine reveals it."""

    __slots__ = ("_open",)

    def __init__(self, open_value: Any) -> None:
        super().__init__(b"")
        self._open = open_value

    def reveal(self) -> bytes:
        value: bytes = self._open()
        return value


class BrokerUpstreams:
    """`Broker`'s upstream secrets and revocations, over its store, book, engines and vault."""

    store: SqliteSecretStore
    book: LeaseBook
    engines: dict[str, Engine]
    vault: SealingVault
    keys: BrokerKeys
    monotonic: Callable[[], float]
    orphans: OrphanSweep
    _specs: dict[str, tuple[tuple[str, str], SecretSpec]]
    _upstreams: dict[tuple[str, str, str], SecretValue]

    if TYPE_CHECKING:

        def spec(self, name: str) -> SecretSpec: ...

    def _upstream(self, spec: SecretSpec) -> SecretValue:
        """The upstream secret of `spec`, unsealed only when an engine reveals it (the object
        is kept per secret and engine: it reads the stored record at each reveal)."""
        cached = self._specs.get(spec.name)  # the stored text this spec was parsed from
        text = cached[0][1] if cached is not None and cached[1] is spec else _config_text(spec)
        key = (spec.name, spec.engine, text)
        found = self._upstreams.get(key)
        if found is None:
            found = self._upstreams[key] = self._sealed_upstream(*key)
        return found

    def _sealed_upstream(self, name: str, engine: str, config: str) -> SecretValue:
        """The value sealed with the configuration the engine uses: a configuration changed
        behind the vault's back (the database written without the vault key, say an upstream
        pointed elsewhere) no longer opens it."""

        def open_value() -> bytes:
            record = self.store.get_secret(name)
            if record is None or record.engine != engine:
                raise SecretError(_F.NOT_CONFIGURED, name)
            if record.config != config:
                raise SecretError(_F.CONFIG_INVALID, f"{name}'s configuration changed: retry")
            try:
                return self.vault.unseal(
                    self.keys.seal_key, record.sealed, _secret_aad(name, engine, config)
                )
            except TrothError:
                raise SecretError(
                    _F.CONFIG_INVALID, f"{name} does not open under its stored configuration"
                ) from None

        return _SealedUpstream(open_value)

    def _revoke_upstream(
        self,
        leases: Iterable[Lease],
        now: int,
        spec: SecretSpec | None = None,
        *,
        member: Identifier | None = None,
        early: bool = False,
    ) -> int:
        """Run each engine's revocation (its records counted for `member`, who asked for it;
        None: the broker's own); failures stay REVOKING, retried by the sweep with a backoff
        (`LeaseBook.revoke_failed`). A lease whose retry is not due yet is left to the sweep
        (an agent revoking its stuck lease again cost the engine's lock timeout at each call)
        unless `early` (an operator's call). Returns how many were not revoked."""
        failed = 0
        for lease in leases:
            if not early and not self.book.retry_due(lease, now):
                failed += 1
                continue
            try:
                lease_spec = spec if spec is not None else self.spec(lease.secret)
            except SecretError:  # the secret is gone: nothing of it can be reached any more
                self.book.finish_revoke(lease, now, "its secret was removed", member=member)
                continue
            try:
                self._revoke_ref(lease_spec, lease.engine_ref)
            except SecretError as exc:
                attempts, retry_at = self.book.revoke_failed(lease, now)
                log.warning(
                    "lease %s of %s: its upstream revocation failed (attempt %d: %s); "
                    "it stays revoking, retried from %d",
                    lease.handle,
                    lease.secret,
                    attempts,
                    exc.detail,
                    retry_at,
                )
                failed += 1
                continue
            self.book.finish_revoke(lease, now, member=member)
        return failed

    def _revoke_batch(
        self, leases: list[Lease], now: int, spec: SecretSpec | None = None, *, early: bool = False
    ) -> int:
        """`_revoke_upstream` of a batch (a feed's, an operator's), in turn within a budget of
        engine time (`BATCH_REVOKE_SECONDS`): a server that stopped answering cost a connect
        timeout per lease, N of them on the broker's thread (review 50c, batches 1). The
        leases not tried are REVOKING already (committed before any engine call), due for
        the sweep's first attempts. Returns how many were not revoked, those included."""
        budget = RetryBudget(
            lambda: self.monotonic(), seconds=BATCH_REVOKE_SECONDS, attempts=len(leases)
        )
        failures: list[int] = []

        def attempt(lease: Lease) -> None:
            failures.append(self._revoke_upstream([lease], now, spec, early=early))

        return budget.run(leases, attempt) + sum(failures)

    def _upstream_refs(self, engine: Engine, spec: SecretSpec) -> set[str]:
        upstream = self._upstream(spec)
        return _engine_call(lambda: engine.upstream_refs(spec, upstream))

    def _revoke_ref(self, spec: SecretSpec, ref: str | None) -> None:
        engine, upstream = self.engines[spec.engine], self._upstream(spec)
        _engine_call(lambda: engine.revoke(spec, ref, upstream))

    def _sweep_orphans(self, now: int) -> int:
        """Remove upstream objects with this broker's prefix that no open lease names, within
        the orphan sweep's schedule and budget (troth.secrets.orphans; review 49e, orphans 1:
        every sweep listed every remote secret's server, a dead one's connect timeout each)."""
        remote = {}
        for record in self.store.secrets():
            spec = self.spec(record.name)
            if not self.engines[spec.engine].local:
                remote[spec.name] = spec

        def orphans_of(name: str) -> list[str]:
            spec = remote[name]
            found = self._upstream_refs(self.engines[spec.engine], spec)
            live = self.store.engine_refs(spec.engine, OPEN_STATES)  # read after listing
            return sorted(found - live)

        def remove(name: str, ref: str) -> bool:
            spec = remote[name]
            try:
                self._revoke_ref(spec, ref)
            except SecretError as exc:  # said, as a failed revocation is (review 69r, leases 2)
                log.warning(
                    "orphan %s of %s: its removal failed (%s); tried again at the next listing",
                    ref,
                    spec.name,
                    exc.detail,
                )
                return False
            with self.store.transaction():
                self.book.audit_other(
                    AuditKind.REVOKED,
                    now,
                    secret=spec.name,
                    detail=f"orphan {ref} removed",
                    ending=True,
                )
            return True

        return self.orphans.run(now, dict(remote), orphans_of, remove)
