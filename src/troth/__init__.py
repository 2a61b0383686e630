"""troth: cryptographic identities, credentials, secure channels, gates and traces for AI agents."""

__version__ = "0.1.0"
