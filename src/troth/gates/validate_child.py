"""The child process that validates a big Cedar policy text (docs/policy.md, "Nesting and size").

Cedar's validator spends, for each validation error in each request environment, time in
proportion to the whole policy text (review 22j, gates 5): an invalid bundle within every
bound of the cost model (troth.gates.policies) could cost it ~26 s of CPU. `compile_policies`
therefore validates a text whose worst case is more than MAX_CEDAR_INPROCESS_WORK in this
program, a fresh interpreter (not a fork of the node, which runs threads), run by its file
path so that no package `__init__` is imported: it limits its own CPU time and address space
(`resource.setrlimit`, RLIMIT_CPU and RLIMIT_AS) and the size of the files it writes
(RLIMIT_FSIZE: its output is a temporary file, which may be memory) before it imports
cedarpy, reads `{"schema": text, "policies": text}` (JSON) on stdin and writes
`{"passed": bool, "errors": [[policy id, message], ...]}` (JSON) on stdout. Over its CPU time
the kernel ends it (SIGXCPU, SIGKILL at the hard limit); an allocation over its address space
ends it (SIGABRT from Rust) or exits with EXIT_MEMORY (Python's MemoryError, or cedarpy's
library not mapped); an output over its file size exits with EXIT_OUTPUT (an error names
whole types: review 25, gates 2). The kernel's out-of-memory killer ends it by SIGKILL too:
the parent (troth.gates.policies) tells that from the hard CPU limit by the CPU time the
child used (`os.wait4`); the child makes itself that killer's first choice (oom_score_adj).

    python -m troth.gates.validate_child CPU_SECONDS ADDRESS_SPACE_BYTES OUTPUT_BYTES < in.json

Only the standard library and cedarpy: nothing of troth is imported here.
"""

from __future__ import annotations

import errno
import json
import resource
import sys
from typing import Final

EXIT_MEMORY: Final = 75
"""The exit status after a MemoryError (the address-space limit)."""
EXIT_OUTPUT: Final = 73
"""The exit status when its output would be longer than its limit (EFBIG: Python ignores
SIGXFSZ)."""
EXIT_USAGE: Final = 64
"""The exit status for arguments or input that are not what the parent sends."""


OOM_SCORE_ADJ: Final = "/proc/self/oom_score_adj"
"""Linux's adjustment of the out-of-memory killer's choice (proc(5)): 1000, the most, makes
this process its first choice; raising it needs no privilege."""


def _limit(cpu_seconds: int, address_space: int, output: int) -> None:
    """RLIMIT_CPU (SIGXCPU at the soft limit, SIGKILL one second later), RLIMIT_AS,
    RLIMIT_FSIZE (the files it writes: its output), and no core file (SIGXCPU and SIGABRT
    would write one of up to the address space); and the out-of-memory killer's first choice
    (OOM_SCORE_ADJ, where there is one): under memory pressure this process ends, not the
    node that started it (review 26c, gates 3)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
    try:
        with open(OOM_SCORE_ADJ, "w") as adjust:
            adjust.write("1000")
    except OSError:  # not Linux, or no /proc: the limits above still hold
        pass


def main(argv: list[str]) -> int:
    """Limit this process, validate the request on stdin, write the outcome (JSON) on stdout; the
    exit status."""
    try:
        cpu_seconds, address_space, output = (int(arg) for arg in argv)
    except ValueError:  # CPU_SECONDS ADDRESS_SPACE_BYTES OUTPUT_BYTES (the parent's, not a user's)
        return EXIT_USAGE
    _limit(cpu_seconds, address_space, output)
    try:
        import cedarpy  # after the limits: loading its library maps memory too
    except ImportError:  # its mmap refused under RLIMIT_AS (the parent imported it already)
        return EXIT_MEMORY
    try:
        request = json.loads(sys.stdin.read())
        schema, policies = request["schema"], request["policies"]
        if not isinstance(schema, str) or not isinstance(policies, str):
            return EXIT_USAGE
        result = cedarpy.validate_policies(policies, cedarpy.Schema.from_str(schema))
        errors = [[e.policy_id, e.error] for e in result.errors]
        json.dump({"passed": bool(result.validation_passed), "errors": errors}, sys.stdout)
        sys.stdout.flush()
    except MemoryError:
        return EXIT_MEMORY
    except OSError as exc:
        if exc.errno != errno.EFBIG:
            raise
        return EXIT_OUTPUT
    except (ValueError, KeyError, TypeError):  # not the parent's request, or its schema
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
