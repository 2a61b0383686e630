"""Review 55c, cli 1 (left for the lead: `troth enroll` lives in troth/cli/credential_cmds.py,
outside this review's files): a ticket given on the command line is taken without a word.

`troth enroll troth-ticket:...` puts the ticket in the shell's history (and the process list
while it runs). Review 53k warned of a ticket file others can read, on the ground that redeeming
a ticket at once makes a copy worthless; a ticket of several uses (`--uses`), or one whose
enrollment failed (the authority unreachable), stays redeemable for whoever reads that history
later, and nothing tells the user so. `troth authority ticket create` says to pass tickets on
stdin, but the `enroll` itself says nothing. The remedy exists since review 55c, tickets 2:
`troth authority ticket void`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from tests.test_review53k_cli import _ticket_file


@pytest.mark.xfail(
    strict=True,
    reason="review 55c, cli 1 (left: credential_cmds.py is outside this review's files): a "
    "ticket on the command line (the shell's history) is not warned of",
)
def test_enroll_warns_of_a_ticket_given_on_the_command_line(troth_home: Path) -> None:
    ticket = _ticket_file(troth_home, 0o600).read_text()
    result = run("enroll", ticket, "--as", "agent", "--node", "agent")
    assert "command line" in result.stderr
