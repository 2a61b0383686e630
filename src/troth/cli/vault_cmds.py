"""`troth vault ...`: a node's software vault (its key-encryption key)."""

from __future__ import annotations

import os
import stat

import click

from troth.bounded_read import read_bounded
from troth.cli.common import INPUT_FILE, home, node_option, read_input
from troth.cli.output import Reporter, escape_text, json_command
from troth.errors import ConfigError
from troth.node.home import check_private

_KEY_TEXT_LIMIT = 1024  # 64 hex digits or 44 base64 characters, and white space


@click.group(
    "vault",
    epilog="""\b
Example: (after a stolen backup of the node directory)
  troth node stop hub
  troth vault rekey --node hub
  troth identity rotate agent --compromised --node hub""",
)
def vault_group() -> None:
    """A node's software vault: the key-encryption key its keys are sealed under."""


@vault_group.command("rekey")
@click.option(
    "--new-key-env",
    metavar="VAR",
    help="For a node whose vault key is TROTH_VAULT_KEY: the environment variable holding the "
    "new key (64 hex digits or base64 of 32 bytes).",
)
@click.option(
    "--new-key-file",
    type=INPUT_FILE,
    metavar="PATH",
    help="For a node whose vault key is TROTH_VAULT_KEY: a file holding the new key, readable "
    "by you alone (- for stdin).",
)
@node_option
@json_command
def rekey(
    new_key_env: str | None, new_key_file: str | None, node_name: str, reporter: Reporter
) -> None:
    """Re-seal every key of the node's software vault under a new key-encryption key, so the
    old one (a copied vault.key, the old TROTH_VAULT_KEY) opens nothing in node.db from now on.
    A node with vault.key gets a fresh random key there; a node whose key is TROTH_VAULT_KEY
    takes the new key from --new-key-env or --new-key-file (set TROTH_VAULT_KEY to it
    afterwards); nothing secret is printed. The node must not be running (troth node stop).
    Crash-safe: a kill at any step leaves the node opening with one key and every key kept;
    what the old key sealed is scrubbed from node.db by the next open no other process shares."""
    if new_key_env is not None and new_key_file is not None:
        raise click.UsageError("give --new-key-env or --new-key-file, not both")
    new_kek = None
    if new_key_env is not None:
        text = os.environ.get(new_key_env)
        if not text:
            raise ConfigError(f"the environment variable {new_key_env} is not set")
        new_kek = _parse_key(text, f"${new_key_env}")
    elif new_key_file is not None:
        data = _read_private_key(new_key_file)
        new_kek = _parse_key(data.decode("ascii", errors="replace"), new_key_file)
    from troth.node.rekey import rekey_vault

    result = rekey_vault(node_name, home=home(), new_kek=new_kek)
    data_out = {
        "node": result.node,
        "keys": result.keys,
        "kek_source": result.kek_source,
        "key_file": result.key_file,
        "scrubbed": result.scrubbed,
    }
    where = (
        f"the new key is in {result.key_file}"
        if result.key_file is not None
        else "set TROTH_VAULT_KEY to the new key before the node's next command"
    )
    owed = (
        ""
        if result.scrubbed
        else "; node.db still holds what the old key sealed (another process read it, or the "
        "disk is full): end that process; the node's next command or start scrubs it"
    )
    reporter.result(data_out, f"{result.node}: {result.keys} keys re-sealed; {where}{owed}")


def _read_private_key(path: str) -> bytes:
    """The new vault key's bytes from `path`, refused (ConfigError, exit 3) when it is a file
    that group or others can read: a new vault key there is one every local user may have
    copied, and the rekey (the recovery from a stolen backup) would seal every key under it
    (review 53f, vault 1; as `read_private_file` refuses node.json and vault.key), or that
    another user owns (its owner wrote the key, and knows it: review 53j, vault 1; as
    `read_private_file` since review 53k, home 1). The file is opened once, checked by its
    open descriptor (fstat) and read from it: checked by its path and opened again, it could
    be replaced in between (review 53q, keyfile 1). A pipe (`-`, a process substitution) is
    not such a file; a file that cannot be read is an OSError (exit 4), as `read_input`'s."""
    if path == "-":
        return read_input(path, _KEY_TEXT_LIMIT, "the new vault key")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(f"cannot read the new vault key {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if stat.S_ISREG(info.st_mode):  # a pipe is no copy left behind
            check_private(
                info,
                path,
                readable=": a vault key in it may have been copied; write a new one to a file "
                "only you can read (chmod 600)",
                owned="its owner wrote the key in it; write a new one to a file of your own",
            )
        return read_bounded(path, _KEY_TEXT_LIMIT, "the new vault key", stream=file)


def _parse_key(text: str, where: str) -> bytes:
    from troth.node.node import parse_kek

    try:
        return parse_kek(text)
    except ConfigError:
        raise click.UsageError(
            f"the new vault key ({escape_text(where)}) must be 64 hex digits or base64 of 32 bytes"
        ) from None
