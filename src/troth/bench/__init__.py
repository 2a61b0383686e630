"""`troth bench`: every figure beside its floor or peer, measured in the same run."""

from troth.bench.channels_bench import CASES as CHANNEL_CASES
from troth.bench.credentials_bench import CASES as CREDENTIAL_CASES
from troth.bench.gates_bench import CASES as GATE_CASES
from troth.bench.harness import Case, Measurement, select
from troth.bench.identity_bench import CASES as IDENTITY_CASES
from troth.bench.secrets_bench import CASES as SECRET_CASES
from troth.bench.service_bench import CASES as SERVICE_CASES

ALL_CASES: list[Case] = [
    *IDENTITY_CASES,
    *CREDENTIAL_CASES,
    *CHANNEL_CASES,
    *SERVICE_CASES,
    *SECRET_CASES,
    *GATE_CASES,
]

__all__ = ["ALL_CASES", "Case", "Measurement", "select"]
