"""Nodes: the named home of a vault, its database and identities (node, config, home), and a
node running (runtime; its parts shown_identity, channel_opening, upkeep): transport, secure
channels (channels), services as plug-ins (services), its trust (trust), the one access
decision point (access), authorities on this machine or over the network (authorities), the
daemon and its typed control table (daemon, control; `python -m troth.node`)."""

from troth.node.config import NodeConfig
from troth.node.home import troth_home
from troth.node.node import DEFAULT_NODE, Node, init_node, list_nodes, open_node

__all__ = [
    "DEFAULT_NODE",
    "Node",
    "NodeConfig",
    "init_node",
    "list_nodes",
    "open_node",
    "troth_home",
]
