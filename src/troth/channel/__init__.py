"""Secure channels: Noise XX (sans-IO) bound to troth identities and credentials."""

from troth.channel.noise import CipherState, HandshakeState, SymmetricState
from troth.channel.policy import (
    AllowIdentifiers,
    AnyAuthenticatedIdentity,
    AnyOf,
    DenyAll,
    RequireAttributes,
)
from troth.channel.replay import ReplayWindow, Verdict
from troth.channel.secure import (
    Accepted,
    ChannelIdentity,
    ChannelSettings,
    ChannelState,
    ChannelTrust,
    Closed,
    Dropped,
    Established,
    Event,
    PeerPolicy,
    Received,
    SecureChannel,
    VerifiedPeer,
)

__all__ = [
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
    "Dropped",
    "Established",
    "Event",
    "HandshakeState",
    "PeerPolicy",
    "Received",
    "ReplayWindow",
    "RequireAttributes",
    "SecureChannel",
    "SymmetricState",
    "Verdict",
    "VerifiedPeer",
]
