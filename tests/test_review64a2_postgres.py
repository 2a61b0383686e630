"""Review 64a2, postgres: review 64w's SCRAM-only admin (`_scram_only`).

postgres 1 (low: the admin's session to a machine in the path): under sslmode `require` or
`verify-ca` over TCP the admin was asked for SCRAM-SHA-256 alone (`require_auth`); channel
binding was left to libpq's default (`prefer`). TLS is used but the server's name is not
proved, so whoever answers at the host and port (a certificate of its own under `require`, any
the CA signed under `verify-ca`) can end the admin's TLS, open its own to the real server and
relay the SCRAM exchange. libpq's default binds it (SCRAM-SHA-256-PLUS) when the server offers
that, and the server then refuses the relay; but with `PGCHANNELBINDING=disable` in the node's
environment (what review 64w's refuted test asks of PGREQUIREAUTH: the engine's own keywords
win), or a server offering no -PLUS (a pooler), the relayed exchange succeeded: the password
stays unsent, but the relay holds an authenticated admin session (CREATEROLE, grants of every
template's privileges) and reads and writes it in clear. Verified by hand against PostgreSQL
18 with ssl=on and a TLS-ending relay: `PGCHANNELBINDING=disable`, sslmode `require`, the
relay saw the admin's statement; with the fix the server refused ("SCRAM channel binding check
failed"), and an honest connection with the fix succeeded. The exchange is now always bound
there (`channel_binding=require`). `prefer`, `allow` and `disable` cannot be (a relay answers
without TLS), nor can a socket (libpq ignores sslmode there): docs/secrets.md says so.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from troth.secrets.engines.postgres import _scram_only


def _libpq(version: int) -> Any:
    return SimpleNamespace(pq=SimpleNamespace(version=lambda: version))


@pytest.mark.parametrize("sslmode", ["require", "verify-ca"])
def test_postgres1_scram_over_unverified_tls_is_bound_to_the_channel(sslmode: str) -> None:
    """TLS promised, the server's name not proved: the SCRAM exchange must be channel-bound."""
    asked = _scram_only(_libpq(180000), {"host": "db.example", "sslmode": sslmode})
    assert asked == {"require_auth": "scram-sha-256", "channel_binding": "require"}


@pytest.mark.parametrize(
    ("host", "sslmode"),
    [("db.example", "prefer"), ("db.example", "disable"), ("/run/postgresql", "require")],
)
def test_postgres1_no_binding_asked_where_no_tls_is_promised(host: str, sslmode: str) -> None:
    """No TLS promised (or a socket, where libpq ignores sslmode): binding would refuse every
    connection; SCRAM alone, as before."""
    assert _scram_only(_libpq(180000), {"host": host, "sslmode": sslmode}) == {
        "require_auth": "scram-sha-256"
    }
