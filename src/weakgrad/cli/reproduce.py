"""``weakgrad reproduce``: the study as one command, thin over
:func:`weakgrad.experiments.reproduce`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from weakgrad.cli import UsageError, app


def _names() -> str:
    # The experiment modules import no JAX at module level: listing them stays fast.
    from weakgrad.experiments.base import all_experiments

    return ", ".join(e.name for e in all_experiments())


@app.command()
def reproduce(
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes (minutes on 2 cores), not the study's.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated experiments (or sections, e.g. loss-landscape): {_names()}."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/study"),
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the last run in --out (its preset and --only)."),
    ] = False,
) -> None:
    """Reproduce the study: run its experiments into OUT/<name>/ (finished ones with the
    same settings are reused) and write OUT/report.html and OUT/claims.json with a verdict
    per claim."""
    from weakgrad.experiments.runner import reproduce as run

    names = None
    if only is not None:
        names = [n.strip() for n in only.split(",") if n.strip()]
        if not names:
            raise UsageError(f"--only must name experiments, got {only!r}.")
        if resume:
            raise UsageError("--resume continues the last run's --only; leave --only out.")

    def line(i: int, n: int, record) -> None:
        secs = "" if record.seconds is None else f", {record.seconds:.1f} s"
        verdicts = "; ".join(f"{c['id']}: {c['verdict']}" for c in record.claims)
        error = f" ({record.error})" if record.error else ""
        typer.echo(f"[{i}/{n}] {record.name}: {record.status}{secs}{error}; {verdicts}")

    def start(i: int, n: int, exp) -> None:
        # A long experiment (the full HH trainings take an hour) shows when it began.
        typer.echo(f"[{i}/{n}] {exp.name}: started {time.strftime('%H:%M:%S')}")

    result = run(out, quick=quick, only=names, resume=resume, progress=line, starting=start)
    typer.echo(result.summary())
