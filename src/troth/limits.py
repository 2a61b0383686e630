"""Every hard limit troth's decoders and verifiers enforce, in one place.

Each bound is far above what an honest peer produces and low enough that a hostile input is
refused before it costs memory or time. Changing one is a format change: note it in
docs/formats.md.
"""

from __future__ import annotations

from typing import Final

# -- generic CBOR decoding (troth.encoding.cbor) ---------------------------------------------
MAX_CBOR_BYTES: Final = 1 << 20
"""Largest CBOR document any decoder accepts (1 MiB)."""
MAX_CBOR_DEPTH: Final = 16
"""Deepest nesting of arrays/maps (troth's formats use at most 4)."""
MAX_CBOR_ITEMS: Final = 65_536
"""Most data items in one document (counting every array/map element and map key)."""

# -- identity (troth.identity) ---------------------------------------------------------------
MAX_IDENTITY_CHANGES: Final = 64
"""Longest change history: a rotation a month for five years fits."""
MAX_IDENTITY_HISTORY_BYTES: Final = 32 * 1024
"""Largest encoded change history."""
MAX_CHANGE_BYTES: Final = 512
"""Largest encoded change body (a P-256 change is ~150 bytes)."""
MAX_ATTESTATION_BYTES: Final = 512
"""Largest encoded purpose-key attestation."""
MAX_CLOCK_SKEW_SECONDS: Final = 300
"""How far in the future a timestamp may lie before it counts as 'in the future'."""

# -- names -----------------------------------------------------------------------------------
MAX_NAME_LENGTH: Final = 64
"""Longest node or identity name."""
