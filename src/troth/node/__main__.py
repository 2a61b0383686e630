"""`python -m troth.node NAME [--tcp-listen HOST:PORT]`: run node NAME in this process until
SIGTERM or SIGINT (what `troth node start` runs in the background), logging to stderr."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from troth.errors import ConfigError, NotFound, RoutingError, StorageError, VaultError
from troth.names import check_name
from troth.node.daemon import serve
from troth.node.home import troth_home
from troth.routing import Address

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and serve the node."""
    parser = argparse.ArgumentParser(prog="python -m troth.node", description=__doc__)
    parser.add_argument("name", help="the node to run")
    parser.add_argument("--tcp-listen", help="host:port to listen on (port 0: any)")
    options = parser.parse_args(argv)
    try:  # what is wrong with the command line: said, exit 2 (review 46b, node main 1)
        check_name(options.name, "node name")
        listen = Address("tcp", options.tcp_listen).host_port() if options.tcp_listen else None
    except (RoutingError, ValueError) as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        asyncio.run(serve(troth_home(), options.name, listen))
    except NotFound as exc:  # no such node: a usage error, as `troth node start` says it
        logging.getLogger("troth.node").error("%s", exc)
        sys.exit(2)
    except ConfigError as exc:  # e.g. the node already runs: said, not a traceback
        logging.getLogger("troth.node").error("%s", exc)
        sys.exit(3)
    except (StorageError, VaultError) as exc:  # its database or vault failed: said, exit 4
        # was a traceback, whose last lines `troth node start` gave as its error (review
        # 49g, cli 10)
        logging.getLogger("troth.node").error("%s", exc)
        sys.exit(4)


if __name__ == "__main__":
    main()
