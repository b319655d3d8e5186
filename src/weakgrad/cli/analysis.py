"""Commands over the analysis layer: landscape, gradcheck, descend, scorecheck. Each builds
the library's settings (which validate themselves), runs the study, saves the result and
prints its summary; defaults and summaries live in ``weakgrad.analysis``.

The heavy ones (landscape, gradcheck, descend) also run as several processes
(``--coordinator/--num-processes/--process-id``, or a detected cluster:
:mod:`weakgrad.distributed`); process 0 writes and prints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from weakgrad.cli import UsageError, _progress, app


def _parse_list(text: str, kind: type, flag: str) -> tuple:
    """``"10,100"`` -> ``(10, 100)``: comma-separated positive finite numbers."""
    try:
        values = tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(
            f"{flag} must be comma-separated {kind.__name__}s, got {text!r}."
        ) from None
    if any(v == float("inf") for v in values):
        raise UsageError(f"{flag} must list finite numbers, got {text!r}.")
    if not values or any(not v > 0 for v in values):
        raise UsageError(f"{flag} must list positive {kind.__name__}s, got {text!r}.")
    if kind is float and max(values) > 1e30:  # float32 simulations overflow long before
        raise UsageError(f"{flag} must list numbers up to 1e30, got {text!r}.")
    return values


# The multi-process flags of every heavy command: JAX's names (jax.distributed.initialize).
Coordinator = Annotated[
    str | None,
    typer.Option(
        help="Multi-process run: HOST:PORT of process 0's coordinator (with --num-processes "
        "and --process-id; none: auto-detected under SLURM, Open MPI or with "
        "JAX_COORDINATOR_ADDRESS). See docs/distributed.md.",
        rich_help_panel="Several processes",
    ),
]
NumProcesses = Annotated[
    int | None,
    typer.Option(
        help="Multi-process run: number of processes.", rich_help_panel="Several processes"
    ),
]
ProcessId = Annotated[
    int | None,
    typer.Option(
        help="Multi-process run: this process's index, 0 to N-1 (0 writes and prints).",
        rich_help_panel="Several processes",
    ),
]


def _cluster(coordinator: str | None, num_processes: int | None, process_id: int | None):
    """Start JAX's multi-process runtime when the flags or the environment ask for it; a
    context that yields whether this process writes and prints (process 0)."""
    from weakgrad.distributed import cluster_settings, session

    return session(cluster_settings(coordinator, num_processes, process_id))


def _run(study, settings, label: str, unit: str, total: int, main: bool = True):
    """``study(settings)`` with a progress bar of ``total`` ``unit`` (process 0 only)."""
    if not main:
        return study(settings, progress=None)
    with _progress(label, unit) as bar:
        job = bar.add_task(label, total=total)
        return study(settings, progress=lambda n: bar.advance(job, n))


def _one_writer(out: Path, command: str, main: bool = True):
    """The folder lock of ``--out`` for the whole command (checks that it is writable);
    nothing for processes other than 0 of a multi-process run, which write nothing."""
    import contextlib

    from weakgrad.io import folder_lock

    return folder_lock(out, what=f"weakgrad {command}") if main else contextlib.nullcontext()


@app.command()
def landscape(
    task: Annotated[str, typer.Option(help="single-neuron | complete-graph.")] = "single-neuron",
    neurons: Annotated[int, typer.Option(help="complete-graph: number of neurons.")] = 1,
    direction: Annotated[
        str,
        typer.Option(
            help="complete-graph: weight (W[0,0] alone) | uniform (all weights) | random "
            "(filter-normalised Gaussian direction)."
        ),
    ] = "uniform",
    two_d: Annotated[
        bool, typer.Option("--2d", help="complete-graph: 2-D sweep over two random directions.")
    ] = False,
    w_min: Annotated[
        float | None,
        typer.Option(help="Smallest weight / step (default 0; graph -50; random or 2-D -1)."),
    ] = None,
    w_max: Annotated[
        float | None, typer.Option(help="Largest weight / step (default 3; graph 300; random 1).")
    ] = None,
    zoom: Annotated[
        tuple[float, float] | None, typer.Option(help="LO HI: sweep only [LO, HI] (a zoom).")
    ] = None,
    points: Annotated[
        int | None,
        # "\\[": rich would read "[w-min, w-max]" as markup and drop it.
        typer.Option(help="Points in \\[w-min, w-max] (default 301; per axis 51 in 2-D)."),
    ] = None,
    trials: Annotated[int, typer.Option(help="Noisy trials (neurons) per weight.")] = 1,
    noise: Annotated[float, typer.Option(help="Noise current std, uA/cm^2 per step.")] = 0.0,
    tau_ms: Annotated[float, typer.Option(help="Simulated duration per trial, ms.")] = 1000.0,
    dt_ms: Annotated[float, typer.Option(help="Time step, ms.")] = 0.01,
    i0: Annotated[
        float, typer.Option(help="single-neuron: current per unit weight, uA/cm^2.")
    ] = 34.6,
    bias: Annotated[float, typer.Option(help="complete-graph: bias current, uA/cm^2.")] = 10.0,
    center: Annotated[
        float, typer.Option(help="complete-graph: base weight of random-direction sweeps.")
    ] = 0.0,
    mollify: Annotated[
        float | None, typer.Option(help="Also mollify the curve with a bump of this half-width.")
    ] = None,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    x64: Annotated[bool, typer.Option("--x64", help="Simulate in float64.")] = False,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/landscape"),
    coordinator: Coordinator = None,
    num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Loss landscape of a turn-off task: sweep a weight (or a direction), write
    landscape.csv/.png/.json (2-D: landscape2d.npz/.csv/.png)."""
    from weakgrad.analysis.landscape import LandscapeSettings, landscape_study

    settings = LandscapeSettings(
        task=task, neurons=neurons, direction=direction, two_d=two_d, w_min=w_min,
        w_max=w_max, zoom=zoom, points=points, trials=trials, noise=noise, tau_ms=tau_ms,
        dt_ms=dt_ms, i0=i0, bias=bias, center=center, mollify=mollify, seed=seed, x64=x64,
    )  # fmt: skip
    with _cluster(coordinator, num_processes, process_id) as main:
        with _one_writer(out, "landscape", main):
            result = _run(
                landscape_study, settings, "landscape", "points", settings.evaluations, main
            )
            if main:
                data, figure = result.save(out)
    if main:
        typer.echo(f"wrote {data} and {figure} ({result.summary()})")


@app.command()
def gradcheck(
    model: Annotated[
        str, typer.Option(help="linear | ann | hh-short (784-100-10 on MNIST).")
    ] = "linear",
    estimators: Annotated[
        str,
        typer.Option(
            help="Comma-separated: regression, smoothing, spsa, mollified, node, "
            "node-stepwise, fd, autodiff."
        ),
    ] = "regression,smoothing,node",
    samples: Annotated[str, typer.Option(help="Comma-separated sample counts S.")] = "10,100,1000",
    sigmas: Annotated[
        str, typer.Option(help="Comma-separated perturbation sizes.")
    ] = "0.001,0.01,0.1",
    repeats: Annotated[int, typer.Option(help="Estimates per grid point (error bars).")] = 3,
    layer: Annotated[
        str, typer.Option(help="Parameters compared: output | hidden | all.")
    ] = "output",
    batch: Annotated[int, typer.Option(help="Digits in the batch.")] = 10,
    duration_ms: Annotated[float, typer.Option(help="hh-short: simulated time, ms.")] = 10.0,
    dt_ms: Annotated[float, typer.Option(help="hh-short: time step, ms.")] = 0.05,
    readout: Annotated[
        str,
        typer.Option(
            help="hh-short: release (mean graded release; smooth over 10 ms, so autodiff is "
            "a fair reference) | voltage (mean membrane potential, what training uses)."
        ),
    ] = "release",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of MNIST IDX files (default: WEAKGRAD_DATA or built-in 5,000 digits)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/gradcheck"),
    coordinator: Coordinator = None,
    num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Compare gradient estimators with autodiff over a grid of samples and sigmas; write
    gradcheck.csv and figures of error vs S, vs sigma, and a gradient heatmap."""
    from weakgrad.analysis.gradcheck import GradcheckSettings, gradcheck_study

    settings = GradcheckSettings(
        model=model, estimators=tuple(n.strip() for n in estimators.split(",") if n.strip()),
        samples=_parse_list(samples, int, "--samples"),
        sigmas=_parse_list(sigmas, float, "--sigmas"), repeats=repeats, layer=layer,
        batch=batch, duration_ms=duration_ms, dt_ms=dt_ms, readout=readout,
        data_dir=data_dir, seed=seed,
    )  # fmt: skip
    with _cluster(coordinator, num_processes, process_id) as main:
        with _one_writer(out, "gradcheck", main):
            result = _run(
                gradcheck_study, settings, "gradcheck", "estimates", settings.estimates, main
            )
            if main:
                path = result.save(out)
    if main:
        typer.echo(f"wrote {path}: {result.summary()}")


@app.command()
def descend(
    method: Annotated[str, typer.Option(help="fd | regression | mollified.")] = "fd",
    eta: Annotated[float, typer.Option(help="Learning rate (w units per unit slope).")] = 0.1,
    w0: Annotated[float, typer.Option(help="Starting weight.")] = 1.5,
    steps: Annotated[int, typer.Option(help="Descent steps.")] = 50,
    growth: Annotated[float, typer.Option(help="Learning-rate factor per step.")] = 1.0,
    neighbours: Annotated[int, typer.Option(help="regression: points on each side.")] = 10,
    width: Annotated[float, typer.Option(help="mollified: bump half-width (w units).")] = 0.1,
    landscape_csv: Annotated[
        Path | None,
        typer.Option("--landscape", help="A landscape.csv to descend (default: compute one)."),
    ] = None,
    points: Annotated[int, typer.Option(help="Grid points when computing the curve.")] = 301,
    tau_ms: Annotated[float, typer.Option(help="Simulated time per point, ms.")] = 1000.0,
    seed: Annotated[int, typer.Option(help="PRNG seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/descend"),
    coordinator: Coordinator = None,
    num_processes: NumProcesses = None,
    process_id: ProcessId = None,
) -> None:
    """Gradient descent on the sampled single-neuron loss curve with slopes read from the
    samples (finite differences, local regression, or finite differences of the mollified
    curve); writes path.csv, path.png and descend.json."""
    from weakgrad.analysis.descend import DescendSettings, descend_study

    settings = DescendSettings(
        method=method, eta=eta, w0=w0, steps=steps, growth=growth, neighbours=neighbours,
        width=width, landscape=landscape_csv, points=points, tau_ms=tau_ms, seed=seed,
    )  # fmt: skip
    total = points if landscape_csv is None else 0
    with _cluster(coordinator, num_processes, process_id) as main:
        with _one_writer(out, "descend", main):
            result = _run(descend_study, settings, "landscape", "points", total, main)
            if main:
                path = result.save(out)
    if main:
        typer.echo(f"wrote {path}: {result.summary()}")


@app.command()
def scorecheck(
    samples: Annotated[
        str, typer.Option(help="Comma-separated sample / node counts.")
    ] = "100,1000",
    sigma: Annotated[float, typer.Option(help="Smoothing standard deviation (x units).")] = 1.0,
    points: Annotated[int, typer.Option(help="Points on [-10, 10].")] = 201,
    seed: Annotated[int, typer.Option(help="Seed of the Monte-Carlo samples.")] = 0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/scorecheck"),
) -> None:
    """Smoothed gradient of a 1-D toy loss that grows quadratically at the borders: the
    Monte-Carlo log trick against quadrature with the same number of samples (the study's
    comparison); writes scorecheck.csv, scorecheck.png and scorecheck.json."""
    from weakgrad.analysis.score_vs_quadrature import check_scorecheck, score_vs_quadrature

    counts = _parse_list(samples, int, "--samples")
    check_scorecheck(sigma=sigma, samples=counts, seed=seed, points=points)
    with _one_writer(out, "scorecheck"):
        result = score_vs_quadrature(sigma=sigma, samples=counts, seed=seed, points=points)
        path = result.save(out)
    typer.echo(f"wrote {path}; {result.summary()}")
