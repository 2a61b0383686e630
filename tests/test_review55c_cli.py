"""Review 55c, cli 1 (fixed by the lead: `troth enroll` lives in troth/cli/credential_cmds.py,
outside that review's files): a ticket given on the command line was taken without a word.

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

from tests.support.cli import run, run_json
from tests.test_review53k_cli import _ticket_file


def test_enroll_warns_of_a_ticket_given_on_the_command_line(troth_home: Path) -> None:
    ticket = _ticket_file(troth_home, 0o600).read_text()
    result = run("enroll", ticket, "--as", "agent", "--node", "agent")
    assert "command line" in result.stderr  # and the enrollment went on (exit 0)
    assert "troth authority ticket void" in result.stderr


def test_the_warning_of_a_ticket_on_the_command_line_is_in_the_json_result(
    troth_home: Path,
) -> None:
    ticket = _ticket_file(troth_home, 0o600).read_text()
    data = run_json("enroll", ticket, "--as", "agent", "--node", "agent")
    assert any("command line" in warning for warning in data["warnings"])
