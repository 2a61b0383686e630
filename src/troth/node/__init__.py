"""Nodes: the named home of a vault, its database and identities (services come later)."""

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
