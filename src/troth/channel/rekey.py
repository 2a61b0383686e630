"""The receiving keys of a secure channel's transport (docs/protocols.md, "Secure channel",
Rekeying): epoch e of the nonce space uses REKEY^e(k) (Noise §4.2), so a receiver finds the key
of a frame from its nonce, without signalling.

A receiver keeps the key of the newest epoch a frame authenticated in and the one before it
(late frames inside the replay window), and derives the keys of the next `MAX_EPOCHS_AHEAD`
epochs when a frame names one, each once (kept until a frame authenticates: a forged frame
naming an epoch ahead costs one derivation per epoch, not one per frame). Frames are lost on the
way by design (a stalled peer's, a congested hop's); when a whole epoch of them was lost, the
next epoch's key alone left the receiver unable to decrypt anything its peer sent ever after
(review 53g, rekey 1).
"""

from __future__ import annotations

from typing import Final

from troth import limits
from troth.channel.noise import CipherState

__all__ = ["MAX_EPOCHS_AHEAD", "ReceiveKeys"]

MAX_EPOCHS_AHEAD: Final = limits.MAX_REKEY_EPOCHS_AHEAD
"""Epochs ahead whose keys a receiver derives (`limits.MAX_REKEY_EPOCHS_AHEAD`)."""


class ReceiveKeys:
    """The receiving keys: the current epoch's and the previous one's (for late frames), and
    the ones derived ahead of them."""

    __slots__ = ("_ahead", "epochs")

    def __init__(self, base: CipherState) -> None:
        self.epochs = {0: base}
        self._ahead: list[CipherState] = []  # REKEY^1.. of the newest epoch's key, derived

    def cipher_for(self, epoch: int) -> CipherState | None:
        """The key for `epoch` (one ahead is derived, not yet kept: see `commit`), or None when
        no key for it is held (an older epoch, or one more than MAX_EPOCHS_AHEAD ahead)."""
        cipher = self.epochs.get(epoch)
        if cipher is not None:
            return cipher
        skip = epoch - max(self.epochs)
        if not 0 < skip <= MAX_EPOCHS_AHEAD:
            return None
        ahead = self._ahead
        while len(ahead) < skip:
            ahead.append((ahead[-1] if ahead else self.epochs[max(self.epochs)]).rekeyed())
        return ahead[skip - 1]

    def commit(self, epoch: int, cipher: CipherState) -> None:
        """A frame of `epoch` authenticated: keep its key and the one before it only."""
        if epoch not in self.epochs:
            skip = epoch - max(self.epochs)  # (at least 1: `cipher_for` gave no older one)
            previous = self.epochs[epoch - 1] if skip == 1 else self._ahead[skip - 2]
            self.epochs = {epoch - 1: previous, epoch: cipher}
            self._ahead = self._ahead[skip:]
