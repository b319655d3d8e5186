"""Commands over the training layer: train, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weakgrad.cli import _progress, app
from weakgrad.cli.analysis import Coordinator, NumProcesses, ProcessId, _cluster

# The built-in case: a sigmoid 784-100-10 network, regression alternating layers, 300 steps
# on the built-in digits: a few minutes on a laptop CPU.
BUILTIN = ["train.steps=300", "train.eval_every=50"]


@app.command(name="train")
def train_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="TOML config (configs/*.toml); none: a small built-in case."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a key: section.key=value (repeatable); replace a whole section "
            "with a TOML inline table, e.g. --set 'estimator={name=\"autodiff\"}'.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's checkpoint.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/train"),
    coordinator: Coordinator = None,
    num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Train a network with a weak-gradient estimator (or autodiff) as a config says; writes
    config.json, metrics.csv, checkpoint.npz, training.png and summary.json into --out.
    Several processes (--coordinator ...): every process trains, process 0 writes."""
    from weakgrad.config import load_run_config
    from weakgrad.training import train

    cfg = load_run_config(config, list(set_ or []), out=out, resume=resume, default=BUILTIN)
    with _cluster(coordinator, num_processes, process_id) as main:
        if not main:  # trains the same steps; writes and prints nothing
            train(cfg, out, resume=resume, lock=False)
            return
        _train_and_report(cfg, out, resume)


def _train_and_report(cfg, out: Path, resume: bool) -> None:
    from weakgrad.io import folder_lock
    from weakgrad.training import train

    # One writer per folder, for the run and its figures alike.
    with folder_lock(out, what="weakgrad train"), _progress("train", "steps") as bar:
        job = bar.add_task("train", total=cfg.train.steps)

        def report(step, row):
            bar.update(job, completed=step + 1)
            if row["val_accuracy"] != "":
                bar.console.log(
                    f"step {step + 1}: loss {row['loss']:.4g}, validation accuracy "
                    f"{100 * row['val_accuracy']:.1f}%"
                )
            elif row["val_loss"] != "":
                bar.console.log(f"step {step + 1}: loss {row['val_loss']:.4g}")

        result = train(cfg, out, resume=resume, progress=report, lock=False)
        result.save_figures(out)
    typer.echo(f"wrote {out / 'metrics.csv'} and {out / 'summary.json'}: {result.describe()}")


@app.command(name="evaluate")
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by weakgrad train (MNIST).")],
    draws: Annotated[
        int | None,
        typer.Option(
            help="Noise draws averaged per prediction (0: the noise-free network; default: "
            "the run's estimator.eval_draws)."
        ),
    ] = None,
    best: Annotated[
        bool, typer.Option("--best", help="Score best.npz, not checkpoint.npz.")
    ] = False,
) -> None:
    """Score a finished (or interrupted) MNIST run again on its validation and test digits,
    for instance as the smoothed network (--draws 16) the weak gradient trains; prints JSON
    and writes nothing."""
    import json

    from weakgrad.training import evaluate

    result = evaluate(run, draws=draws, best=best)
    typer.echo(json.dumps(result, indent=2))
    line = (
        f"{run / result['checkpoint']} (step {result['step']}, {result['eval_draws']} draws): "
        f"validation accuracy {100 * result['val_accuracy']:.1f}%, test accuracy "
        f"{100 * result['test_accuracy']:.1f}%"
    )
    if "noise_free_test_accuracy" in result:
        line += f" (noise-free {100 * result['noise_free_test_accuracy']:.1f}%)"
    typer.echo(line, err=True)
