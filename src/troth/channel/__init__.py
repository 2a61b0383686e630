"""Secure channels: Noise XX (sans-IO) bound to troth identities and credentials.

noise (the Noise framework for XX), packets (packet framing), state (states and transitions),
verification (peer verification), reassembly, events, secure (the channel), policy (who is
admitted), replay (the replay window), payloads (what rides inside).
"""

from troth.channel.events import (
    Accepted,
    Closed,
    Dropped,
    DropReason,
    Established,
    Event,
    GivenUp,
    NotRouted,
    Received,
)
from troth.channel.noise import CipherState, HandshakeState, SymmetricState
from troth.channel.packets import (
    PACKET_LIMIT,
    RouteProblem,
    is_route_error,
    parse_route_error,
    route_error,
    split_packet,
)
from troth.channel.policy import (
    AllowIdentifiers,
    AnyAuthenticatedIdentity,
    AnyOf,
    DenyAll,
    RequireAttributes,
)
from troth.channel.reassembly import REASSEMBLY_TIMEOUT, ReassemblyBudget
from troth.channel.replay import ReplayWindow, Verdict
from troth.channel.secure import ChannelIdentity, ChannelSettings, SecureChannel
from troth.channel.state import ChannelState
from troth.channel.verification import ChannelTrust, PeerPolicy, VerifiedPeer, verify_peer

__all__ = [
    "PACKET_LIMIT",
    "REASSEMBLY_TIMEOUT",
    "Accepted",
    "AllowIdentifiers",
    "AnyAuthenticatedIdentity",
    "AnyOf",
    "ChannelIdentity",
    "ChannelSettings",
    "ChannelState",
    "ChannelTrust",
    "CipherState",
    "Closed",
    "DenyAll",
    "DropReason",
    "Dropped",
    "Established",
    "Event",
    "GivenUp",
    "HandshakeState",
    "NotRouted",
    "PeerPolicy",
    "ReassemblyBudget",
    "Received",
    "ReplayWindow",
    "RequireAttributes",
    "RouteProblem",
    "SecureChannel",
    "SymmetricState",
    "Verdict",
    "VerifiedPeer",
    "is_route_error",
    "parse_route_error",
    "route_error",
    "split_packet",
    "verify_peer",
]
