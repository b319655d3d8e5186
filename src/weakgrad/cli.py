"""Command-line interface: thin over the public API."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="weakgrad: weak gradients and loss landscapes for Hodgkin-Huxley and spiking networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """weakgrad: weak gradients and loss landscapes for Hodgkin-Huxley and spiking networks."""


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _use_all_cores() -> None:
    # XLA's CPU backend runs one device per thread; expose one device per core so that
    # sweeps shard over all of them. Must happen before JAX creates its backend.
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        n = os.cpu_count() or 1
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


@app.command()
def landscape(
    w_min: Annotated[float, typer.Option(help="Smallest weight.")] = 0.0,
    w_max: Annotated[float, typer.Option(help="Largest weight.")] = 3.0,
    points: Annotated[int, typer.Option(help="Number of weights in [w-min, w-max].")] = 301,
    trials: Annotated[int, typer.Option(help="Noisy trials (neurons) per weight.")] = 1,
    noise: Annotated[float, typer.Option(help="Noise current std, uA/cm^2 per step.")] = 0.0,
    tau_ms: Annotated[float, typer.Option(help="Simulated duration per trial, ms.")] = 1000.0,
    dt_ms: Annotated[float, typer.Option(help="Time step, ms.")] = 0.01,
    i0: Annotated[float, typer.Option(help="Input current per unit weight, uA/cm^2.")] = 34.6,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    x64: Annotated[bool, typer.Option("--x64", help="Simulate in float64.")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/landscape"),
) -> None:
    """Loss landscape of the single-neuron turn-off task: sweep w, write landscape.csv/.png."""
    if points < 2:
        raise UsageError(f"--points must be >= 2, got {points}.")
    if trials < 1:
        raise UsageError(f"--trials must be >= 1, got {trials}.")
    if not w_max > w_min:
        raise UsageError(f"--w-max ({w_max}) must be greater than --w-min ({w_min}).")
    if noise < 0:
        raise UsageError(f"--noise must be >= 0 uA/cm^2, got {noise}; use 0 for no noise.")
    if dt_ms <= 0:
        raise UsageError(f"--dt-ms must be > 0, got {dt_ms}; try 0.01.")
    if tau_ms <= 0 or tau_ms < dt_ms:
        raise UsageError(f"--tau-ms must be positive and >= --dt-ms, got {tau_ms}; try 1000.")

    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    import numpy as np
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from weakgrad.landscape import sweep_1d
    from weakgrad.neurons import HodgkinHuxley
    from weakgrad.plots import plot_landscape, save_figure
    from weakgrad.tasks import SingleNeuronTurnOff

    task = SingleNeuronTurnOff(HodgkinHuxley(noise_std=noise), i0=i0, tau_ms=tau_ms, dt_ms=dt_ms)
    w = np.linspace(w_min, w_max, points)
    out.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("[bold]landscape"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} w"),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        job = bar.add_task("sweep", total=points)
        result = sweep_1d(
            task.evaluate_trials,
            w,
            trials=trials,
            key=jax.random.key(seed),
            current=lambda x: x * i0,
            chunk=max(jax.device_count(), 128),
            progress=lambda n: bar.advance(job, n),
        )
    result.to_csv(out / "landscape.csv")
    save_figure(plot_landscape(result), out / "landscape.png")
    meta = {
        "task": "single-neuron",
        "w_min": w_min,
        "w_max": w_max,
        "points": points,
        "trials": trials,
        "noise": noise,
        "tau_ms": tau_ms,
        "dt_ms": dt_ms,
        "i0": i0,
        "seed": seed,
        "dtype": "float64" if x64 else "float32",
    }
    tmp = out / "landscape.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / "landscape.json")
    peak = int(np.argmax(result.spikes_mean))
    after = np.nonzero(result.spikes_mean[peak:] < 0.5 * result.spikes_mean[peak])[0]
    stop = (
        f"repetitive firing stops near w={result.w[peak + after[0]]:.3g}"
        if after.size
        else "repetitive firing does not stop in this range"
    )
    typer.echo(
        f"wrote {out / 'landscape.csv'} and {out / 'landscape.png'} "
        f"({points} points x {trials} trial{'s' if trials != 1 else ''}; {stop})"
    )


def main() -> None:
    _use_all_cores()
    import equinox as eqx

    from weakgrad.network import SimulationError

    try:
        app()
    except (UsageError, ValueError, TypeError) as e:  # bad input: one line, exit 2
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (SimulationError, eqx.EquinoxRuntimeError) as e:  # numerics failed: exit 1
        lines = str(e).strip().splitlines()
        line = next((m for m in lines if "blew up" in m), lines[0] if lines else repr(e))
        typer.echo(f"error: {line.strip()}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
