"""Commands over the analysis layer: landscape, gradcheck, descend, scorecheck."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from weakgrad.cli import UsageError, _progress, app


def _single_neuron_sweep(w_min, w_max, points, trials, noise, tau_ms, dt_ms, i0, seed):
    """The single-neuron turn-off landscape with a progress bar (shared by commands)."""
    import jax
    import numpy as np

    from weakgrad.analysis.landscape import sweep_1d
    from weakgrad.sim.neurons import HodgkinHuxley
    from weakgrad.tasks import SingleNeuronTurnOff

    task = SingleNeuronTurnOff(HodgkinHuxley(noise_std=noise), i0=i0, tau_ms=tau_ms, dt_ms=dt_ms)
    w = np.linspace(w_min, w_max, points)
    with _progress("landscape", "w") as bar:
        job = bar.add_task("sweep", total=points)
        return sweep_1d(
            task.evaluate_trials,
            w,
            trials=trials,
            key=jax.random.key(seed),
            current=lambda x: x * i0,
            chunk=max(jax.device_count(), 128),
            progress=lambda n: bar.advance(job, n),
        )


LANDSCAPE_TASKS = ("single-neuron", "complete-graph")
DIRECTIONS = ("weight", "uniform", "random")


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
        int | None, typer.Option(help="Points in [w-min, w-max] (default 301; per axis 51 in 2-D).")
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
) -> None:
    """Loss landscape of a turn-off task: sweep a weight (or a direction), write
    landscape.csv/.png/.json (2-D: landscape2d.npz/.csv/.png)."""
    if task not in LANDSCAPE_TASKS:
        raise UsageError(f"--task must be one of {', '.join(LANDSCAPE_TASKS)}, got {task!r}.")
    if direction not in DIRECTIONS:
        raise UsageError(f"--direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}.")
    graph = task == "complete-graph"
    if not graph and (two_d or neurons != 1):
        raise UsageError(
            "--2d and --neurons need --task complete-graph (the single neuron has one weight)."
        )
    if neurons < 1:
        raise UsageError(f"--neurons must be >= 1, got {neurons}.")
    if two_d and neurons * neurons < 2:
        raise UsageError("--2d needs at least 2 weights: use --neurons 2 or more.")
    if zoom is not None:
        w_min, w_max = zoom
    # Defaults: the input weight for one neuron; the recurrent weight for the graph; steps
    # in units of the filter-normalised direction (1 = the base weights' own scale).
    lo, hi = (
        (0.0, 3.0)
        if not graph
        else (-1.0, 1.0)
        if two_d or direction == "random"
        else (-50.0, 300.0)
    )
    w_min = lo if w_min is None else w_min
    w_max = hi if w_max is None else w_max
    points = (51 if two_d else 301) if points is None else points
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
    if mollify is not None and not mollify > 0:
        raise UsageError(f"--mollify must be a positive half-width, got {mollify}.")

    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from weakgrad.io import write_csv, write_json
    from weakgrad.plots import plot_landscape, plot_landscape_2d, save_figure

    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "task": task, "w_min": w_min, "w_max": w_max, "points": points, "trials": trials,
        "noise": noise, "tau_ms": tau_ms, "dt_ms": dt_ms, "seed": seed,
        "dtype": "float64" if x64 else "float32", "zoom": list(zoom) if zoom else None,
    }  # fmt: skip
    if graph:
        meta.update(neurons=neurons, direction=direction, bias=bias, center=center, two_d=two_d)
        result = _complete_graph_sweep(
            neurons, direction, two_d, w_min, w_max, points, trials, noise, tau_ms, dt_ms,
            bias, center, seed,
        )  # fmt: skip
        if two_d:
            result.to_npz(out / "landscape2d.npz")
            result.to_csv(out / "landscape2d.csv")
            title = f"complete graph of {neurons} HH neurons: two filter-normalised directions"
            save_figure(plot_landscape_2d(result, title=title), out / "landscape2d.png")
            write_json(out / "landscape.json", meta)
            typer.echo(
                f"wrote {out / 'landscape2d.csv'} and {out / 'landscape2d.png'} "
                f"({points} x {points} points; loss {result.loss_mean.min():.4g} to "
                f"{result.loss_mean.max():.4g})"
            )
            return
    else:
        meta["i0"] = i0
        result = _single_neuron_sweep(w_min, w_max, points, trials, noise, tau_ms, dt_ms, i0, seed)
    result.to_csv(out / "landscape.csv")
    smooth = None
    if mollify is not None:
        from weakgrad.analysis.mollify import BumpKernel, mollify_curve

        smooth = mollify_curve(result.w, result.loss_mean, BumpKernel(mollify))
        write_csv(
            out / "landscape_mollified.csv",
            ["w", "loss_mean", "loss_mollified", "valid"],
            (
                [float(a), float(b), float(c), bool(d)]
                for a, b, c, d in zip(
                    result.w, result.loss_mean, smooth.y, smooth.valid, strict=True
                )
            ),
        )
        meta["mollify"] = mollify
    if graph:
        what = {
            "weight": "W[0,0]",
            "uniform": "all recurrent weights",
            "random": "random direction",
        }
        title = (
            f"complete graph of {neurons} HH neuron{'s' if neurons > 1 else ''}: {what[direction]}"
        )
        xlabel = {
            "weight": "recurrent weight W[0,0] (uA/cm^2 per unit release)",
            "uniform": "recurrent weight w, all connections (uA/cm^2 per unit release)",
            "random": "step along the random direction",
        }[direction]
    else:
        title = xlabel = None
    fig = plot_landscape(
        result, title=title, xlabel=xlabel, smooth=None if smooth is None else smooth.y
    )
    save_figure(fig, out / "landscape.png")
    if graph:
        from weakgrad.analysis.landscape import detect_bands

        bands = detect_bands(result.w, result.loss_mean, window=max(2, min(50, points // 10)))
        write_csv(
            out / "bands.csv",
            ["w", "bands"],
            zip(bands.w.tolist(), bands.count.tolist(), strict=True),
        )
        meta["max_bands"] = bands.max_count
        many = bands.w[bands.count > 1]
        stop = (
            f"up to {bands.max_count} loss bands (multi-valued) between w={many.min():.4g} and "
            f"{many.max():.4g}"
            if many.size
            else "one loss band everywhere"
        )
    else:
        peak = int(np.argmax(result.spikes_mean))
        after = np.nonzero(result.spikes_mean[peak:] < 0.5 * result.spikes_mean[peak])[0]
        stop = (
            f"repetitive firing stops near w={result.w[peak + after[0]]:.3g}"
            if after.size
            else "repetitive firing does not stop in this range"
        )
    write_json(out / "landscape.json", meta)
    typer.echo(
        f"wrote {out / 'landscape.csv'} and {out / 'landscape.png'} "
        f"({points} points x {trials} trial{'s' if trials != 1 else ''}; {stop})"
    )


def _complete_graph_sweep(
    n, direction, two_d, w_min, w_max, points, trials, noise, tau_ms, dt_ms, bias, center, seed
):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from weakgrad.analysis.landscape import along, random_direction, sweep_1d, sweep_2d
    from weakgrad.sim.neurons import HodgkinHuxley
    from weakgrad.tasks import CompleteGraphTurnOff

    task = CompleteGraphTurnOff(
        n, HodgkinHuxley(noise_std=noise), bias=bias, tau_ms=tau_ms, dt_ms=dt_ms
    )
    k_sim, k_dir = jax.random.split(jax.random.key(seed))
    total = points * points if two_d else points
    grid = np.linspace(w_min, w_max, points)
    with _progress("landscape", "points") as bar:
        job = bar.add_task("sweep", total=total)
        chunk = max(jax.device_count(), 128)
        if two_d:
            base = task.uniform(center)
            k1, k2 = jax.random.split(k_dir)
            d1, d2 = random_direction(k1, base), random_direction(k2, base)
            return sweep_2d(
                task.evaluate_trials, base, d1, d2, grid, grid, trials=trials, key=k_sim,
                chunk=chunk, progress=lambda m: bar.advance(job, m),
            )  # fmt: skip
        if direction == "uniform":
            base, d = task.uniform(0.0), task.uniform(1.0)
        elif direction == "weight":
            base, d = task.uniform(0.0), jnp.zeros((n, n)).at[0, 0].set(1.0)
        else:
            base = task.uniform(center)
            d = random_direction(k_dir, base)
        return sweep_1d(
            along(task.evaluate_trials, base, d), grid, trials=trials, key=k_sim,
            chunk=chunk, progress=lambda m: bar.advance(job, m),
        )  # fmt: skip


GRADCHECK_MODELS = ("linear", "ann", "hh-short")
GRADCHECK_LAYERS = ("output", "hidden", "all")


def _estimator_factories(names: list[str], layer: str, d: int) -> dict:
    """CLI names -> factories (samples, sigma) -> estimator. sigma is the perturbation size:
    the weight std for weight-space methods, the finite-difference step, the pre-activation
    noise std for node perturbation, and sqrt(d) times the bump width's per-coordinate
    scale for the mollifier (the bump in d dimensions concentrates near its radius)."""
    from weakgrad import estimators as E
    from weakgrad.estimators import NodePerturbation

    node_layers = {"output": (1,), "hidden": (0,), "all": None}[layer]
    table = {
        "regression": lambda s, sg: E.Regression(sigma=sg, samples=max(s, 2)),
        "smoothing": lambda s, sg: E.GaussianSmoothing(sigma=sg, samples=max(2, s - s % 2)),
        "spsa": lambda s, sg: E.SPSA(step=sg, samples=max(1, s // 2)),
        "mollified": lambda s, sg: E.MollifiedMonteCarlo(
            width=sg * d**0.5, samples=max(2, s - s % 2)
        ),
        "node": lambda s, sg: NodePerturbation(sigma=sg, samples=max(2, s), layers=node_layers),
        "node-stepwise": lambda s, sg: E.StepwiseNodePerturbation(
            sigma=sg, samples=s, layers=node_layers
        ),
        "fd": lambda s, sg: E.CentralDifference(step=sg),
        "autodiff": lambda s, sg: E.Autodiff(),
    }
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise UsageError(
            f"--estimators: unknown {', '.join(unknown) or '(empty)'}; choose from "
            f"{', '.join(table)} (comma-separated)."
        )
    return {n: table[n] for n in names}


def _parse_list(text: str, kind: type, flag: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(
            f"{flag} must be comma-separated {kind.__name__}s, got {text!r}."
        ) from None
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{flag} must list positive {kind.__name__}s, got {text!r}.")
    return values


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
) -> None:
    """Compare gradient estimators with autodiff over a grid of samples and sigmas; write
    gradcheck.csv and figures of error vs S, vs sigma, and a gradient heatmap."""
    if model not in GRADCHECK_MODELS:
        raise UsageError(f"--model must be one of {', '.join(GRADCHECK_MODELS)}, got {model!r}.")
    if layer not in GRADCHECK_LAYERS:
        raise UsageError(f"--layer must be one of {', '.join(GRADCHECK_LAYERS)}, got {layer!r}.")
    if repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {repeats}.")
    if batch < 1:
        raise UsageError(f"--batch must be >= 1, got {batch}.")
    sample_list = _parse_list(samples, int, "--samples")
    sigma_list = _parse_list(sigmas, float, "--sigmas")
    names = [n.strip() for n in estimators.split(",") if n.strip()]

    import jax
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from weakgrad.analysis.diagnostics import gradcheck as run_gradcheck
    from weakgrad.io import write_json
    from weakgrad.plots import plot_gradcheck, plot_gradient_heatmap, save_figure
    from weakgrad.tasks.mnist import load_mnist, mnist_objective

    data = load_mnist(data_dir, seed=seed)
    k_net, k_check = jax.random.split(jax.random.key(seed))
    objective = mnist_objective(
        "hh" if model == "hh-short" else model,
        data.x_train[:batch],
        data.y_train[:batch],
        key=k_net,
        duration_ms=duration_ms,
        dt_ms=dt_ms,
        readout=readout,
    )
    params = objective.params()
    selected = {"output": (1,), "hidden": (0,), "all": (0, 1)}[layer]
    mask = tuple({k: i in selected for k in p} for i, p in enumerate(params))
    d = sum(int(np.size(v)) for i, p in enumerate(params) if i in selected for v in p.values())
    factories = _estimator_factories(names, layer, d)
    total = len(factories) * len(sample_list) * len(sigma_list) * repeats
    out.mkdir(parents=True, exist_ok=True)
    with _progress("gradcheck", "estimates") as bar:
        job = bar.add_task("grid", total=total)
        result = run_gradcheck(
            objective,
            params,
            factories,
            samples=sample_list,
            sigmas=sigma_list,
            repeats=repeats,
            key=k_check,
            mask=mask,
            progress=lambda n: bar.advance(job, n),
        )
    result.to_csv(out / "gradcheck.csv")
    summary = result.summary()
    title = f"{model}, {layer} layer ({d} parameters), batch {batch}"
    save_figure(plot_gradcheck(summary, x="samples", title=title), out / "gradcheck_vs_samples.png")
    save_figure(plot_gradcheck(summary, x="sigma", title=title), out / "gradcheck_vs_sigma.png")
    # Heatmap of the output weight matrix (or the first 100 rows of the hidden one).
    w_layer = 1 if 1 in selected else 0
    shape = np.shape(params[w_layer]["weight"])
    # Flat position of every parameter, read off the same ravel the estimators use (no
    # assumption about the order of the layer dicts' keys).
    flat, unravel = ravel_pytree(params)
    positions = unravel(np.arange(flat.size, dtype=np.float64))
    rows = min(shape[0], 100)
    cells = np.asarray(positions[w_layer]["weight"])[:rows].astype(int).ravel()
    pos = {int(j): n for n, j in enumerate(result.indices)}
    if all(int(c) in pos for c in cells):
        first = next(iter(result.examples))
        take = np.asarray([pos[int(c)] for c in cells])
        reference = result.reference[take].reshape(rows, shape[1])
        estimate = result.examples[first][take].reshape(rows, shape[1])
        fig = plot_gradient_heatmap(
            reference,
            estimate,
            title=f"{title}: layer {w_layer} weights",
            label=f"{first}, S={max(sample_list)}",
        )
        save_figure(fig, out / "gradcheck_heatmap.png")
        tmp = out / "gradcheck_heatmap.tmp.npz"  # the numbers behind the heat map
        np.savez(tmp, reference=reference, estimate=estimate, estimator=first, layer=w_layer)
        os.replace(tmp, out / "gradcheck_heatmap.npz")
    write_json(
        out / "gradcheck.json",
        {
            "model": model,
            "estimators": names,
            "samples": sample_list,
            "sigmas": sigma_list,
            "repeats": repeats,
            "layer": layer,
            "parameters_compared": d,
            "batch": batch,
            "duration_ms": duration_ms if model == "hh-short" else None,
            "dt_ms": dt_ms if model == "hh-short" else None,
            "data": data.source,
            "seed": seed,
            "summary": summary,
        },
    )
    best = {}
    for row in summary:
        if row["samples"] == max(sample_list):
            cur = best.get(row["estimator"])
            if cur is None or np.nan_to_num(row["rel_error"], nan=np.inf) < cur["rel_error"]:
                best[row["estimator"]] = row
    parts = [f"{n}: cos {r['cosine']:.3f} (sigma {r['sigma']:g})" for n, r in best.items()]
    typer.echo(
        f"wrote {out / 'gradcheck.csv'} ({len(result.rows)} estimates); at S={max(sample_list)} "
        + "; ".join(parts)
    )


DESCEND_METHODS = ("fd", "regression", "mollified")


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
) -> None:
    """Gradient descent on the sampled single-neuron loss curve with slopes read from the
    samples (finite differences, local regression, or finite differences of the mollified
    curve); writes path.csv, path.png and descend.json."""
    if method not in DESCEND_METHODS:
        raise UsageError(f"--method must be one of {', '.join(DESCEND_METHODS)}, got {method!r}.")
    if eta <= 0 or growth <= 0:
        raise UsageError(f"--eta and --growth must be > 0, got {eta} and {growth}.")
    if steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}.")
    if points < 3:
        raise UsageError(f"--points must be >= 3, got {points}.")

    import numpy as np

    from weakgrad.analysis.descend import CentralSlope, RegressionSlope, grid_descent
    from weakgrad.analysis.landscape import Landscape1D
    from weakgrad.analysis.mollify import BumpKernel, mollify_curve
    from weakgrad.io import write_json
    from weakgrad.plots import plot_descent, save_figure

    out.mkdir(parents=True, exist_ok=True)
    if landscape_csv is not None:
        if not landscape_csv.is_file():
            raise UsageError(f"--landscape {landscape_csv} does not exist; run weakgrad landscape.")
        curve = Landscape1D.from_csv(landscape_csv)
    else:
        curve = _single_neuron_sweep(0.0, 3.0, points, 1, 0.0, tau_ms, 0.01, 34.6, seed)
        curve.to_csv(out / "landscape.csv")
    w, loss = np.asarray(curve.w), np.asarray(curve.loss_mean)
    if not w[0] <= w0 <= w[-1]:
        raise UsageError(f"--w0 {w0} lies outside the curve's range [{w[0]:g}, {w[-1]:g}].")
    smooth = None
    if method == "mollified":
        smooth = mollify_curve(w, loss, BumpKernel(width))
        target, rule = smooth.y, CentralSlope()
    elif method == "regression":
        target, rule = loss, RegressionSlope(neighbours)
    else:
        target, rule = loss, CentralSlope()
    path = grid_descent(w, target, w0=w0, eta=eta, steps=steps, slope=rule, growth=growth)
    path.to_csv(out / "path.csv")
    if smooth is not None:
        from weakgrad.io import write_csv

        write_csv(
            out / "mollified.csv",
            ["w", "loss", "mollified", "valid"],
            (
                [float(a), float(b), float(c), bool(d)]
                for a, b, c, d in zip(w, loss, smooth.y, smooth.valid, strict=True)
            ),
        )
    title = (
        f"{method}: eta={eta:g}" + (f" x {growth:g}/step" if growth != 1 else "") + f", w0={w0:g}"
    )
    save_figure(
        plot_descent(w, loss, path, smooth=None if smooth is None else smooth.y, title=title),
        out / "path.png",
    )
    tail = path.distinct_tail()
    outcome = {1: "stopped (flat slope)", 2: "oscillating between two points"}.get(
        tail, "still moving"
    )
    write_json(
        out / "descend.json",
        {
            "method": method, "eta": eta, "w0": w0, "steps": steps, "growth": growth,
            "neighbours": neighbours if method == "regression" else None,
            "width": width if method == "mollified" else None,
            "landscape": str(landscape_csv) if landscape_csv else str(out / "landscape.csv"),
            "final_w": float(path.w[-1]), "final_loss": float(path.loss[-1]),
            "distinct_points_last_10_steps": tail, "outcome": outcome,
        },
    )  # fmt: skip
    typer.echo(
        f"wrote {out / 'path.csv'}: w {path.w[0]:g} -> {path.w[-1]:g}, loss {path.loss[0]:.4g} -> "
        f"{path.loss[-1]:.4g}; last 10 steps: {outcome}"
    )


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
    counts = _parse_list(samples, int, "--samples")
    if min(counts) < 2:
        raise UsageError(f"--samples must be >= 2, got {samples}.")
    if not sigma > 0:
        raise UsageError(f"--sigma must be > 0, got {sigma}.")
    if points < 3:
        raise UsageError(f"--points must be >= 3, got {points}.")
    import numpy as np

    from weakgrad.analysis.score_vs_quadrature import score_vs_quadrature
    from weakgrad.io import write_csv, write_json
    from weakgrad.plots import plot_score_vs_quadrature, save_figure

    out.mkdir(parents=True, exist_ok=True)
    r = score_vs_quadrature(x=np.linspace(-10, 10, points), sigma=sigma, samples=counts, seed=seed)
    write_csv(out / "scorecheck.csv", r.header(), r.rows())
    title = "gradient of the Gaussian-smoothed toy loss: Monte Carlo vs quadrature"
    save_figure(plot_score_vs_quadrature(r, title=title), out / "scorecheck.png")
    border = np.abs(r.x) > 8
    errs = {
        f"{name}_{s}": {
            "rms": float(np.sqrt(np.mean((g - r.reference) ** 2))),
            "rms_border": float(np.sqrt(np.mean((g - r.reference)[border] ** 2))),
        }
        for name in ("monte_carlo", "quadrature")
        for s, g in getattr(r, name).items()
    }
    write_json(
        out / "scorecheck.json",
        {"samples": counts, "sigma": sigma, "points": points, "seed": seed, "errors": errs},
    )
    parts = [
        f"{k}: rms error {v['rms']:.3g} ({v['rms_border']:.3g} at |x| > 8)" for k, v in errs.items()
    ]
    typer.echo(f"wrote {out / 'scorecheck.csv'}; " + "; ".join(parts))
