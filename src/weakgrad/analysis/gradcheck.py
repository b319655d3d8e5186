"""What ``weakgrad gradcheck`` runs: estimators named in the registry against the autodiff
gradient of a 784-100-10 MNIST network, over a grid of sample counts and perturbation
sizes, on the parameters of chosen layers (study 000, figures "Comparison" and "FIT S").

:func:`gradcheck_study` returns a :class:`GradcheckStudy` holding the rows of
:func:`weakgrad.analysis.diagnostics.gradcheck`, the number of parameters compared, the
heat-map arrays of one weight matrix and the best estimate per estimator; it saves itself.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.analysis._checks import at_most, finite
from weakgrad.analysis._checks import seed as check_seed
from weakgrad.analysis.diagnostics import GradCheck
from weakgrad.errors import ConfigError
from weakgrad.registry import HH_READOUTS, estimator_names

__all__ = ["GradcheckSettings", "GradientHeatmap", "GradcheckStudy", "gradcheck_study"]

# "hh-short": the HH network over a short time (10 ms by default), where autodiff is a
# fair reference; the MNIST task calls it "hh".
GRADCHECK_MODELS = ("linear", "ann", "hh-short")
# --layer -> indices of the compared (and perturbed) layers of the 784-100-10 network.
GRADCHECK_LAYERS = {"output": (1,), "hidden": (0,), "all": (0, 1)}
# Largest grids accepted (more would not fit in memory: S perturbations of every parameter).
MAX_SAMPLES = 100_000
MAX_REPEATS = 1_000
MAX_STEPS = 1_000_000  # hh-short: --duration-ms / --dt-ms


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclasses.dataclass(frozen=True)
class GradcheckSettings:
    """What ``weakgrad gradcheck`` compares.

    Attributes:
        model: "linear", "ann" (sigmoid) or "hh-short" (Hodgkin-Huxley over ``duration_ms``
            ms at ``dt_ms`` ms, read out as ``readout``: "release" or "voltage").
        estimators: names from :func:`weakgrad.registry.estimator_names`.
        samples, sigmas: the grid (sigma in each estimator's perturbation units; see
            :func:`weakgrad.registry.grid_estimator`).
        repeats: estimates per grid point (error bars).
        layer: the parameters compared: "output", "hidden" or "all".
        batch: digits in the batch; data_dir: a folder of MNIST IDX files (None:
            ``WEAKGRAD_DATA`` or the built-in 5,000 digits); seed: PRNG and split seed.

    Bad values raise :class:`~weakgrad.errors.ConfigError` naming the command-line option.
    """

    model: str = "linear"
    estimators: tuple[str, ...] = ("regression", "smoothing", "node")
    samples: tuple[int, ...] = (10, 100, 1000)
    sigmas: tuple[float, ...] = (0.001, 0.01, 0.1)
    repeats: int = 3
    layer: str = "output"
    batch: int = 10
    duration_ms: float = 10.0
    dt_ms: float = 0.05
    readout: str = "release"
    data_dir: Path | None = None
    seed: int = 0

    def __post_init__(self):
        # Finite numbers first, each naming its own option.
        finite("--dt-ms", self.dt_ms)
        finite("--duration-ms", self.duration_ms)
        for sigma in self.sigmas:
            finite("--sigmas", sigma)
        check_seed(self.seed)
        unknown = [n for n in self.estimators if n not in estimator_names()]
        folder = self.data_dir or os.environ.get("WEAKGRAD_DATA") or None
        for ok, message in [
            (
                self.model in GRADCHECK_MODELS,
                f"--model must be one of {', '.join(GRADCHECK_MODELS)}, got {self.model!r}.",
            ),
            (
                self.layer in GRADCHECK_LAYERS,
                f"--layer must be one of {', '.join(GRADCHECK_LAYERS)}, got {self.layer!r}.",
            ),
            (
                not unknown and bool(self.estimators),
                f"--estimators: unknown {', '.join(unknown) or '(empty)'}; choose from "
                f"{', '.join(estimator_names())} (comma-separated).",
            ),
            (
                bool(self.samples) and min(self.samples) >= 1,
                f"--samples must list positive ints, got {list(self.samples)}.",
            ),
            (
                bool(self.sigmas) and min(self.sigmas) > 0,
                f"--sigmas must list positive floats, got {list(self.sigmas)}.",
            ),
            (self.repeats >= 1, f"--repeats must be >= 1, got {self.repeats}."),
            (self.batch >= 1, f"--batch must be >= 1, got {self.batch}."),
            (
                self.readout in HH_READOUTS,
                f"--readout must be one of {', '.join(HH_READOUTS)}, got {self.readout!r}.",
            ),
            (
                self.dt_ms > 0 and self.duration_ms >= self.dt_ms,
                f"--duration-ms ({self.duration_ms}) and --dt-ms ({self.dt_ms}) must be "
                "positive with duration >= dt; try 10 and 0.05.",
            ),
            (
                folder is None or Path(folder).is_dir(),
                f"MNIST data folder {folder} does not exist: pass --data-dir (or set "
                "WEAKGRAD_DATA to) a folder of MNIST IDX files, or leave both out for the "
                "built-in 5,000 digits.",
            ),
        ]:
            _require(ok, message)
        at_most("--samples", max(self.samples), MAX_SAMPLES, "use fewer samples")
        at_most("--repeats", self.repeats, MAX_REPEATS, "use fewer repeats")
        if self.model == "hh-short":
            steps = self.duration_ms / self.dt_ms
            _require(
                steps <= MAX_STEPS,
                f"--duration-ms / --dt-ms = {steps:.3g} time steps, above the limit of "
                f"{MAX_STEPS:,}; shorten --duration-ms or lengthen --dt-ms.",
            )

    @property
    def layers(self) -> tuple[int, ...]:
        """Indices of the compared layers."""
        return GRADCHECK_LAYERS[self.layer]

    @property
    def estimates(self) -> int:
        """Number of estimates the grid takes."""
        return len(self.estimators) * len(self.samples) * len(self.sigmas) * self.repeats


@dataclasses.dataclass(frozen=True)
class GradientHeatmap:
    """The reference and one estimated gradient of a weight matrix (dL/dW), shaped
    ``(rows, columns)`` = (presynaptic, postsynaptic); at most its first 100 rows."""

    reference: np.ndarray
    estimate: np.ndarray
    estimator: str
    layer: int


@dataclasses.dataclass(frozen=True)
class GradcheckStudy:
    """Result of :func:`gradcheck_study`.

    Attributes:
        settings: what was compared.
        check: every estimate's errors, the reference and each estimator's best estimate.
        parameters: number of parameters compared (d).
        data: where the digits came from.
        heatmap: the output weights (or the hidden ones' first 100 rows), reference vs the
            first estimator at the largest sample count; None if the compared parameters
            do not cover that matrix.
    """

    settings: GradcheckSettings
    check: GradCheck
    parameters: int
    data: str
    heatmap: GradientHeatmap | None

    def best(self) -> dict[str, dict[str, Any]]:
        """Per estimator, the summary row (mean over repeats) with the smallest relative
        error at the largest sample count (NaN errors last)."""
        top = max(self.settings.samples)
        best: dict[str, dict[str, Any]] = {}
        for row in self.check.summary():
            if row["samples"] == top:
                cur = best.get(row["estimator"])
                if cur is None or np.nan_to_num(row["rel_error"], nan=np.inf) < cur["rel_error"]:
                    best[row["estimator"]] = row
        return best

    def as_dict(self) -> dict[str, Any]:
        """``gradcheck.json``: the settings, d, the data source and the summary rows."""
        s = self.settings
        hh = s.model == "hh-short"
        return {
            "model": s.model, "estimators": list(s.estimators), "samples": list(s.samples),
            "sigmas": list(s.sigmas), "repeats": s.repeats, "layer": s.layer,
            "parameters_compared": self.parameters, "batch": s.batch,
            "duration_ms": s.duration_ms if hh else None, "dt_ms": s.dt_ms if hh else None,
            "data": self.data, "seed": s.seed, "summary": self.check.summary(),
        }  # fmt: skip

    def summary(self) -> str:
        parts = [
            f"{n}: cos {r['cosine']:.3f} (sigma {r['sigma']:g})" for n, r in self.best().items()
        ]
        return f"{len(self.check.rows)} estimates; at S={max(self.settings.samples)} " + "; ".join(
            parts
        )

    def save(self, out: str | os.PathLike) -> Path:
        """Write ``gradcheck.csv``, ``gradcheck_vs_samples.png``, ``gradcheck_vs_sigma.png``,
        ``gradcheck_heatmap.png`` and ``.npz`` (the numbers behind it), ``gradcheck.json``
        and ``manifest.json`` last, as a set (:func:`weakgrad.io.staged_outputs`: after a
        failure ``out`` holds the previous outputs unchanged); returns the CSV's path."""
        from weakgrad.io import staged_outputs, write_json, write_npz
        from weakgrad.plots import plot_gradcheck, plot_gradient_heatmap, save_figure

        out, s, summary = Path(out), self.settings, self.check.summary()
        with staged_outputs(out, command="gradcheck") as d:
            self.check.to_csv(d / "gradcheck.csv")
            title = f"{s.model}, {s.layer} layer ({self.parameters} parameters), batch {s.batch}"
            for x in ("samples", "sigma"):
                fig = plot_gradcheck(summary, x=x, title=title)
                save_figure(fig, d / f"gradcheck_vs_{x}.png")
            h = self.heatmap
            if h is not None:
                fig = plot_gradient_heatmap(
                    h.reference,
                    h.estimate,
                    title=f"{title}: layer {h.layer} weights",
                    label=f"{h.estimator}, S={max(s.samples)}",
                )
                save_figure(fig, d / "gradcheck_heatmap.png")
                write_npz(
                    d / "gradcheck_heatmap.npz",
                    reference=h.reference,
                    estimate=h.estimate,
                    estimator=h.estimator,
                    layer=h.layer,
                )
            write_json(d / "gradcheck.json", self.as_dict())
        return out / "gradcheck.csv"


def _heatmap(check: GradCheck, params: Any, layer: int) -> GradientHeatmap | None:
    """The weight matrix of ``layer`` (at most 100 rows) from the compared coordinates."""
    from jax.flatten_util import ravel_pytree

    shape = np.shape(params[layer]["weight"])
    # Flat position of every parameter, read off the same ravel the estimators use (no
    # assumption about the order of the layer dicts' keys).
    flat, unravel = ravel_pytree(params)
    positions = unravel(np.arange(flat.size, dtype=np.float64))
    rows = min(shape[0], 100)
    cells = np.asarray(positions[layer]["weight"])[:rows].astype(int).ravel()
    pos = {int(j): n for n, j in enumerate(check.indices)}
    if not all(int(c) in pos for c in cells):
        return None
    first = next(iter(check.examples))
    take = np.asarray([pos[int(c)] for c in cells])
    return GradientHeatmap(
        check.reference[take].reshape(rows, shape[1]),
        check.examples[first][take].reshape(rows, shape[1]),
        first,
        layer,
    )


def gradcheck_study(
    settings: GradcheckSettings, *, progress: Callable[[int], None] | None = None
) -> GradcheckStudy:
    """Build the network and batch, compare every estimator on the grid (paired keys per
    repeat), and pick the heat map; ``progress`` is called with 1 after each estimate."""
    import jax

    from weakgrad.analysis.diagnostics import gradcheck
    from weakgrad.registry import grid_estimator
    from weakgrad.tasks.mnist import load_mnist, mnist_objective

    s = settings
    data = load_mnist(s.data_dir, seed=s.seed)
    available = len(data.x_train)
    _require(
        s.batch <= available,
        f"--batch {s.batch} is more than the {available} training digits available "
        f"({data.source}); use --batch {available} or less, or a larger --data-dir.",
    )
    k_net, k_check = jax.random.split(jax.random.key(s.seed))
    objective = mnist_objective(
        "hh" if s.model == "hh-short" else s.model,
        data.x_train[: s.batch],
        data.y_train[: s.batch],
        key=k_net,
        duration_ms=s.duration_ms,
        dt_ms=s.dt_ms,
        readout=s.readout,
    )
    params = objective.params()
    mask = tuple({k: i in s.layers for k in p} for i, p in enumerate(params))
    dim = sum(int(np.size(v)) for i in s.layers for v in params[i].values())
    # Node perturbation perturbs the compared layers (None: all of them).
    node_layers = None if s.layer == "all" else s.layers

    def factory(name: str) -> Callable[[int, float], Any]:
        return lambda n, sigma: grid_estimator(
            name, samples=n, sigma=sigma, layers=node_layers, dim=dim
        )

    check = gradcheck(
        objective,
        params,
        {name: factory(name) for name in s.estimators},
        samples=list(s.samples),
        sigmas=list(s.sigmas),
        repeats=s.repeats,
        key=k_check,
        mask=mask,
        progress=progress,
    )
    # A sigma at which every estimate is NaN or inf overflowed the simulation: that is the
    # option's value, not a result to plot or save.
    for sigma in s.sigmas:
        rows = [
            r for r in check.rows if r["sigma"] == float(sigma) and r["estimator"] != "autodiff"
        ]
        if rows and not any(np.isfinite(r["rel_error"]) for r in rows):
            raise ConfigError(
                f"--sigmas {sigma:g}: every estimate at this perturbation size is NaN or inf "
                "(the perturbed simulations overflow); use smaller --sigmas (0.001-1 is usual)."
            )
    heat_layer = 1 if 1 in s.layers else 0
    return GradcheckStudy(s, check, dim, data.source, _heatmap(check, params, heat_layer))
