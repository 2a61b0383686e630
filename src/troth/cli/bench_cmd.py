"""`troth bench`: run the benchmarks and print each figure with its floor and the ratio."""

from __future__ import annotations

import click

from troth.cli.output import Reporter, json_command


@click.command("bench")
@click.option("--only", "pattern", help="Run only cases matching this glob or substring.")
@click.option("--quick", is_flag=True, help="Fewer rounds (a smoke run, figures are rougher).")
@json_command
def bench(pattern: str | None, quick: bool, reporter: Reporter) -> None:
    """Benchmarks, each beside its floor or a peer measured in the same run.

    The ratio is value / baseline for times (lower is better) and for rates (higher is
    better); each figure's target says which way it must go."""
    from troth.bench import ALL_CASES, select

    cases = select(ALL_CASES, pattern)
    if not cases:
        raise ValueError(f"no benchmark matches {pattern!r}")
    results = []
    for case in cases:
        reporter.info(f"running {case.name} ...")
        results.extend(case.run(quick))
    lines = [f"{'benchmark':34} {'value':>16} {'baseline':>16} {'ratio':>7}  target"]
    for m in results:
        verdict = "" if m.meets_target is None else (" ok" if m.meets_target else " MISSED")
        value = f"{m.value:.2f} {m.unit}" if m.value < 100 else f"{m.value:.0f} {m.unit}"
        base = f"{m.baseline_value:.2f}" if m.baseline_value < 100 else f"{m.baseline_value:.0f}"
        lines.append(
            f"{m.name:34} {value:>16} {base:>16} {m.ratio:6.2f}x  {m.target or ''}{verdict}"
        )
        lines.append(f"  {'':32} baseline = {m.baseline}")
        for key, value in m.extra.items():
            lines.append(f"  {'':34} {key} = {value}")
    reporter.result([m.to_json() for m in results], "\n".join(lines))
