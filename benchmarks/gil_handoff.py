"""Two threads signing with Ed25519 (pyca lets go of the GIL while it signs) against one, with
some Python between signatures: how much a second thread adds (benchmarks/README.md, "Ceiling
(`trace.append.ceiling`) and threads").

    .venv/bin/python benchmarks/gil_handoff.py
"""

from __future__ import annotations

import threading
import time

from troth.crypto.bench_floor import ed25519_signer

MESSAGE = bytes(650)  # about a trace record's DSSE PAE
SIGNATURES = 6000
ROUNDS = 5


def python(iterations: int) -> int:
    total = 0
    for i in range(iterations):
        total += i
    return total


def work(count: int, spin: int) -> None:
    sign = ed25519_signer()
    for _ in range(count):
        python(spin)
        sign(MESSAGE)


def per_signature(threads: int, spin: int) -> float:
    workers = [
        threading.Thread(target=work, args=(SIGNATURES // threads, spin)) for _ in range(threads)
    ]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - start) / SIGNATURES


def main() -> None:
    for spin in (0, 100, 300):
        start = time.perf_counter()
        python(spin * 2000)
        between = (time.perf_counter() - start) / 2000
        ones, twos = [], []
        for _ in range(ROUNDS):  # interleaved: noise hits both alike
            ones.append(per_signature(1, spin))
            twos.append(per_signature(2, spin))
        one, two = min(ones), min(twos)
        print(
            f"Python between signatures {between * 1e6:4.1f} us: one thread {one * 1e6:.1f} "
            f"us/signature, two threads {two * 1e6:.1f} us/signature: {one / two:.2f}x"
        )


if __name__ == "__main__":
    main()
