"""`troth bench`: run the benchmarks and print each figure with its floor and the ratio."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, NoReturn

import click

from troth.cli.output import EXIT_INTERRUPTED, Reporter, error_object, json_command, to_stderr

if TYPE_CHECKING:
    from troth.bench import Measurement


def _missing_peers() -> list[str]:
    """The `bench` extra's packages that are not installed (their peer figures are left out)."""
    modules = {"biscuit-python": "biscuit_auth", "noiseprotocol": "noise"}
    return [name for name, module in modules.items() if importlib.util.find_spec(module) is None]


@click.command(
    "bench",
    epilog="""\b
Example:
  troth bench --quick
  troth bench --only 'chain.verify*' --json""",
)
@click.option(
    "--only", "pattern", metavar="PATTERN", help="Run only cases matching this glob or substring."
)
@click.option("--quick", is_flag=True, help="Fewer rounds (a smoke run, figures are rougher).")
@click.option(
    "--smoke",
    is_flag=True,
    help="One short round of each case (--quick's sizes, or smaller): every figure reported, "
    "none meaningful (checks that each case runs).",
)
@json_command
def bench(pattern: str | None, quick: bool, smoke: bool, reporter: Reporter) -> None:
    """Benchmarks, each beside its floor or a peer measured in the same run.

    The ratio is value / baseline for times (lower is better) and for rates (higher is
    better); each figure's target says which way it must go. Peer figures need the bench
    extra (pip install 'troth[bench]')."""
    from contextlib import nullcontext

    from troth.bench import ALL_CASES, select
    from troth.bench.harness import smoke as smoke_run

    cases = select(ALL_CASES, pattern)
    if not cases:
        # named here: `troth bench --json` runs every case, minutes, to list them (review 68k)
        names = ", ".join(case.name for case in ALL_CASES)
        raise ValueError(f"no benchmark matches {pattern!r}; the benchmarks: {names}")
    missing = _missing_peers()
    if missing:
        reporter.info(
            f"troth: note: {', '.join(missing)} not installed: their peer figures are left out "
            "(pip install 'troth[bench]')"
        )
    results: list[Measurement] = []
    measured = 0
    try:
        with smoke_run() if smoke else nullcontext():
            for number, case in enumerate(cases, 1):
                to_stderr(f"[{number}/{len(cases)}] {case.name} ...")  # (61n, cli 2)
                results.extend(case.run(quick or smoke))
                measured = number
    except KeyboardInterrupt:
        _interrupted(reporter, results, measured, len(cases))
    reporter.result([m.to_json() for m in results], _table(results))


def _interrupted(
    reporter: Reporter, results: list[Measurement], measured: int, total: int
) -> NoReturn:
    """Ctrl-C: the rows of the cases measured so far, marked interrupted (with --json the
    error object with them), and exit 130 (review 45a, bench 1: they were dropped)."""
    interrupted = KeyboardInterrupt("interrupted")
    if reporter.as_json:
        payload = {
            **error_object(interrupted),
            "interrupted": True,
            "cases": total,
            "cases_measured": measured,
            "results": [m.to_json() for m in results],
        }
        reporter.fail(interrupted, EXIT_INTERRUPTED, payload)
    note = f"interrupted: {measured} of {total} case(s) measured"
    reporter.result([], f"{_table(results)}\n{note}")
    reporter.fail(interrupted, EXIT_INTERRUPTED)


def _table(results: list[Measurement]) -> str:
    """The measurements, one row each with its baseline and extras."""
    lines = [f"{'benchmark':34} {'value':>16} {'baseline':>16} {'ratio':>7}  target"]
    for m in results:
        verdict = "" if m.meets_target is None else (" ok" if m.meets_target else " MISSED")
        value = f"{m.value:.2f} {m.unit}" if m.value < 100 else f"{m.value:.0f} {m.unit}"
        base = f"{m.baseline_value:.2f}" if m.baseline_value < 100 else f"{m.baseline_value:.0f}"
        lines.append(
            f"{m.name:34} {value:>16} {base:>16} {m.ratio:6.2f}x  {m.target or ''}{verdict}"
        )
        lines.append(f"  {'':32} baseline = {m.baseline}")
        for key, extra in m.extra.items():
            lines.append(f"  {'':34} {key} = {extra}")
    return "\n".join(lines)
