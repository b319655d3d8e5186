"""Commands over the training layer: train, evaluate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weakgrad.cli import UsageError, _progress, app


@app.command(name="train")
def train_command(
    config: Annotated[
        Path | None,
        typer.Argument(help="TOML config (configs/*.toml); none: a small built-in case."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: section.key=value (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's checkpoint.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/train"),
) -> None:
    """Train a network with a weak-gradient estimator (or autodiff) as a config says; writes
    config.json, metrics.csv, checkpoint.npz, training.png and summary.json into --out."""
    from weakgrad.config import load_config

    overrides = list(set_ or [])
    if config is None and not resume:
        # The built-in case: a sigmoid 784-100-10 network, regression alternating layers,
        # 300 steps on the built-in digits: a few minutes on a laptop CPU.
        overrides = ["train.steps=300", "train.eval_every=50", *overrides]
    if resume and config is None and (out / "config.json").exists():
        import json as _json

        from weakgrad.config import config_from_dict

        cfg = config_from_dict(_json.loads((out / "config.json").read_text()))
    else:
        cfg = load_config(config, overrides)

    from weakgrad.training.loop import train

    with _progress("train", "steps") as bar:
        job = bar.add_task("train", total=cfg.train.steps)

        def report(step, row):
            bar.update(job, completed=step + 1)
            if row.get("val_accuracy") != "":
                bar.console.log(
                    f"step {step + 1}: loss {row['loss']:.4g}, validation accuracy "
                    f"{100 * row['val_accuracy']:.1f}%"
                )
            elif row.get("val_loss") != "":
                bar.console.log(f"step {step + 1}: loss {row['val_loss']:.4g}")

        summary = train(cfg, out, resume=resume, progress=report)
    if "test_accuracy" in summary:
        result = (
            f"test accuracy {100 * summary['test_accuracy']:.1f}% "
            f"({summary['test_size']} held-out digits)"
        )
    else:
        result = (
            f"final loss {summary['final_loss']:.4g}; {summary['output_spikes']} output vs "
            f"{summary['target_spikes']} target spikes (raster.png)"
        )
    if "noise_free_test_accuracy" in summary:
        result += (
            f", predictions averaged over {summary['eval_draws']} noise draws (noise-free "
            f"network: {100 * summary['noise_free_test_accuracy']:.1f}%)"
        )
    if "best" in summary:
        b = summary["best"]
        key = "test accuracy" if "test_accuracy" in b else "loss"
        value = (
            f"{100 * b['test_accuracy']:.1f}%" if "test_accuracy" in b else f"{b['final_loss']:.4g}"
        )
        result += f"; best validation at step {b['step']} (best.npz): {key} {value}"
    typer.echo(
        f"wrote {out / 'metrics.csv'} and {out / 'summary.json'}: {summary['steps']} steps in "
        f"{summary['seconds']:.1f} s, {result}"
    )


@app.command(name="evaluate")
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by weakgrad train (MNIST).")],
    draws: Annotated[
        int | None,
        typer.Option(
            help="Noise draws averaged per prediction (0: the noise-free network; default: "
            "the run's train.eval_draws)."
        ),
    ] = None,
    best: Annotated[
        bool, typer.Option("--best", help="Score best.npz, not checkpoint.npz.")
    ] = False,
) -> None:
    """Score a finished (or interrupted) MNIST run again on its validation and test digits,
    for instance as the smoothed network (--draws 16) the weak gradient trains; prints JSON
    and writes nothing."""
    import json as _json

    from weakgrad.training.loop import evaluate

    if draws is not None and draws < 0:
        raise UsageError(f"--draws = {draws} must be >= 0 (0: the noise-free network).")
    result = evaluate(run, draws=draws, best=best)
    typer.echo(_json.dumps(result, indent=2))
    line = (
        f"{run / result['checkpoint']} (step {result['step']}, {result['eval_draws']} draws): "
        f"validation accuracy {100 * result['val_accuracy']:.1f}%, test accuracy "
        f"{100 * result['test_accuracy']:.1f}%"
    )
    if "noise_free_test_accuracy" in result:
        line += f" (noise-free {100 * result['noise_free_test_accuracy']:.1f}%)"
    typer.echo(line, err=True)
