"""Study 000, "Linear Classifier": the toy before MNIST. A linear 784-100-10 network (no
activation; weights ``(in, out)`` as the study's rows and columns) gets an input of all
ones and the loss is its mean output:

    z1 = 1 W1,  z2 = z1 W2,  L = mean(z2),  so  dL/dW2[j, i] = z1[j] / 10:

every row of the gradient with respect to ``W2`` is constant (the study: "the gradient does
not change between values in the same row"). The experiment learns by autodiff (gradient
descent) and shows the gradient at the start and the end; fits the regression estimate with
S = 500 and a small sigma on the first 10 rows of ``W2`` alone, on all of ``W2`` and on both
layers at once, against autodiff; and plots the loss along single weights (the "scatters").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "LinearToySettings",
    "LinearToy",
    "check_rows_constant",
    "check_regression_matches",
    "check_isolated_layers",
    "check_scatters",
]

SECTION = "Linear Classifier"
# The perturbed sets compared, each fitted with the same S: the first 10 rows of W2 (the
# study's comparison), all of W2, and both layers.
SCOPES = ("w2_rows", "w2", "all")


@dataclasses.dataclass(frozen=True)
class LinearToySettings(ExperimentSettings):
    """``n_in`` inputs (all ones), ``hidden`` linear units, ``n_out`` outputs; autodiff
    learning for ``learn_steps`` steps of rate ``learning_rate``; regression with
    ``samples`` perturbations of std ``sigma`` on the first ``rows`` rows of ``W2``; the
    scatters sample ``scatter_points`` values on +/- ``scatter_span`` around each weight."""

    n_in: int = 784
    hidden: int = 100
    n_out: int = 10
    learn_steps: int = 100
    learning_rate: float = 1e-3
    samples: int = 500
    sigma: float = 1e-3
    rows: int = 10
    scatter_points: int = 101
    scatter_span: float = 1.0


def check_rows_constant(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The autodiff gradient of ``W2`` at the start and at the end of learning: the largest
    spread within a row (max - min), relative to the gradient's largest entry, at most 1e-5
    at both (reproduced); at one of them: partly. Also reports the error against the
    closed form ``z1 / n_out``."""
    spreads = [float(data[f"row_spread_{w}"]) for w in ("start", "end")]
    ok = [s <= 1e-5 for s in spreads]
    verdict = (
        Verdict.REPRODUCED if all(ok) else Verdict.PARTLY if any(ok) else Verdict.NOT_REPRODUCED
    )
    return verdict, (
        f"largest relative spread within a row of dL/dW2: {spreads[0]:.2g} at the start, "
        f"{spreads[1]:.2g} after learning; relative error against z1 / n_out: "
        f"{float(data['closed_form_error']):.2g}"
    )


def check_regression_matches(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Relative L2 error of the regression estimate on the first rows of ``W2`` (S = 500 >
    the 100 parameters): "almost perfect" is <= 0.05 (reproduced); <= 0.2: partly."""
    e = float(data["error_w2_rows"])
    verdict = (
        Verdict.REPRODUCED if e <= 0.05 else Verdict.PARTLY if e <= 0.2
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, f"relative L2 error of the regression on the first rows of W2: {e:.3g}"


def check_isolated_layers(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Error on the first rows of ``W2`` when both layers are perturbed at once against
    when ``W2`` alone is (same S): at least 2x (reproduced), larger (partly)."""
    alone, both = float(data["error_w2"]), float(data["error_all"])
    ratio = both / alone if alone > 0 else float("inf")
    verdict = (
        Verdict.REPRODUCED if ratio >= 2 else Verdict.PARTLY if ratio > 1
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, (
        f"relative error on the first rows of W2: {alone:.3g} perturbing W2 alone, "
        f"{both:.3g} perturbing both layers at once (ratio {ratio:.3g})"
    )


def check_scatters(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Slopes of the loss along W2[0, 0], W2[0, 1] (same row) and W2[1, 0]: the first two
    equal within 1e-3 (relative) and the third different by more than 1e-2: reproduced;
    only one of the two: partly."""
    a, b, c = (float(v) for v in data["scatter_slopes"])
    same = abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-30)
    differs = abs(a - c) > 1e-2 * max(abs(a), abs(c), 1e-30)
    verdict = (
        Verdict.REPRODUCED if same and differs else Verdict.PARTLY if same or differs
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, f"slopes along W2[0,0], W2[0,1], W2[1,0]: {a:.4g}, {b:.4g}, {c:.4g}"


ROWS = Claim(
    id="linear-toy-gradient-rows-constant",
    section=SECTION,
    claim="With input all ones and the mean output as the loss, the gradient with respect "
    "to W2 does not change between values in the same row (each row is one hidden unit's "
    "z1 divided by the number of outputs), at the start and at the end of autodiff learning.",
    measures="largest (max - min) within a row of the autodiff dL/dW2 over its largest "
    "entry, at the start and after learning; reproduced if <= 1e-5 at both, partly at one.",
    check=check_rows_constant,
)
MATCH = Claim(
    id="linear-toy-regression-almost-perfect",
    section=SECTION,
    claim="The regression method with a very small standard deviation and S = 500, fitted "
    "on the first 10 rows of W2 alone, gives almost perfect results against autodiff.",
    measures="relative L2 error against autodiff; reproduced <= 0.05, partly <= 0.2.",
    check=check_regression_matches,
)
ISOLATED = Claim(
    id="linear-toy-isolated-layers-less-noisy",
    section=SECTION,
    claim="Changing weights in all layers at once with noise gives bad results; applying "
    "noise to isolated weight layers one at a time gives much less noisy results.",
    measures="relative error on the first 10 rows of W2 with both layers perturbed over "
    "with W2 alone perturbed (same S); reproduced >= 2, partly > 1.",
    check=check_isolated_layers,
)
SCATTERS = Claim(
    id="linear-toy-scatters",
    section=SECTION,
    claim="The loss along weights in the first row (first and second column) has almost "
    "identical structure, different from the weight in the second row, first column.",
    measures="least-squares slopes of the loss along W2[0,0], W2[0,1], W2[1,0]: first two "
    "within 1e-3 of each other and the third more than 1e-2 from them: reproduced; one "
    "of the two: partly.",
    check=check_scatters,
)


@dataclasses.dataclass(frozen=True)
class _ToyResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: LinearToySettings
    data: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json, write_npz

        write_npz(folder / "gradients.npz", **self.arrays)
        header = ["value", "w2_0_0", "w2_0_1", "w2_1_0"]
        a = self.arrays
        rows = zip(a["scatter_values"].tolist(), *a["scatter_losses"].tolist(), strict=True)
        write_csv(folder / "scatters.csv", header, rows)
        write_json(
            folder / "errors.json",
            {f"error_{s}": float(self.data[f"error_{s}"]) for s in SCOPES}
            | {"learning_loss": a["learning_loss"].tolist()},
        )

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        a, s = self.arrays, self.settings
        figs = {}
        fig, axes = plt.subplots(1, 3, figsize=(12, 4), width_ratios=(1, 1, 1.2))
        for ax, name, title in zip(
            axes[:2], ("grad_start", "grad_end"), ("start of learning", "end of learning"),
            strict=True,
        ):  # fmt: skip
            im = ax.imshow(a[name][:20], aspect="auto", cmap="viridis")
            ax.set_title(f"autodiff dL/dW2, {title}")
            ax.set_xlabel("output unit (column)")
            ax.set_ylabel("hidden unit (row of W2, first 20)")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.xaxis.get_major_locator().set_params(integer=True)
            fig.colorbar(im, ax=ax, label="dL/dW2")
        ax = axes[2]
        ax.plot(np.arange(a["learning_loss"].size), a["learning_loss"], color="tab:blue")
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel("loss: mean output")
        ax.set_title(f"autodiff learning, rate {s.learning_rate:g}")
        fig.tight_layout()
        figs["autodiff_start_end"] = fig

        fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), layout="constrained")
        panels = [("autodiff", a["truth_rows"])] + [
            (
                f"regression, {label}\n(relative error {float(self.data[f'error_{k}']):.2g})",
                a[f"est_{k}"],
            )
            for k, label in zip(
                SCOPES,
                ("first rows of W2 perturbed", "all of W2 perturbed", "both layers perturbed"),
                strict=True,
            )
        ]
        lo = float(np.min(a["truth_rows"]))
        hi = float(np.max(a["truth_rows"]))
        for ax, (title, m) in zip(axes, panels, strict=True):
            im = ax.imshow(m, aspect="auto", cmap="viridis", vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("output unit (column)")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].set_ylabel(f"row of W2 (first {s.rows})")
        fig.colorbar(im, ax=axes, label="dL/dW2 (shared scale)")
        fig.suptitle(f"Regression (S = {s.samples}, sigma = {s.sigma:g}) against autodiff")
        figs["regression_vs_autodiff"] = fig

        fig, ax = plt.subplots(figsize=(6, 4))
        # Open circles under dots: the first two weights' losses coincide, both stay visible.
        for y, label, color, style in zip(
            a["scatter_losses"], ("W2[0,0] (row 1, column 1)", "W2[0,1] (row 1, column 2)",
                                  "W2[1,0] (row 2, column 1)"),
            ("tab:blue", "tab:orange", "tab:green"),
            (dict(marker="o", mfc="none", ms=6), dict(marker=".", ms=3),
             dict(marker=".", ms=3)), strict=True,
        ):  # fmt: skip
            ax.plot(a["scatter_values"], y, ls="none", color=color, label=label, **style)
        ax.set_xlabel("change of the single weight")
        ax.set_ylabel("loss: mean output")
        ax.set_title("Loss along single weights of W2")
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        figs["scatters"] = fig
        return figs


class LinearToy(AbstractExperiment):
    """The linear toy: autodiff gradient rows, regression vs autodiff, the scatters."""

    name = "linear-toy"
    title = "Linear toy (input all ones, loss = mean output): autodiff and regression"
    section = SECTION
    claims = (ROWS, MATCH, ISOLATED, SCATTERS)

    def quick(self) -> LinearToySettings:
        return LinearToySettings()

    def full(self) -> LinearToySettings:
        return LinearToySettings()

    def tiny(self) -> LinearToySettings:
        return LinearToySettings(
            n_in=20, hidden=8, n_out=3, learn_steps=5, samples=30, rows=3, scatter_points=11
        )

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _ToyResult:
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        from weakgrad.estimators import Masked, Regression
        from weakgrad.objectives.base import Objective

        s = settings
        k1, k2, k_est = jax.random.split(jax.random.key(s.seed), 3)
        params = {
            "W1": jax.random.normal(k1, (s.n_in, s.hidden)) / np.sqrt(s.n_in),
            "W2": jax.random.normal(k2, (s.hidden, s.n_out)) / np.sqrt(s.hidden),
        }
        x = jnp.ones(s.n_in)

        def loss(p, key=None):
            return jnp.mean((x @ p["W1"]) @ p["W2"])

        grad = jax.jit(jax.grad(loss))

        def row_spread(g):
            g = np.asarray(g["W2"], np.float64)
            return float(np.max(np.ptp(g, axis=1)) / max(np.max(np.abs(g)), 1e-30))

        g0 = grad(params)
        p, losses = params, []
        for _ in range(s.learn_steps):
            losses.append(float(loss(p)))
            p = jax.tree.map(lambda v, g: v - s.learning_rate * g, p, grad(p))
        g1 = grad(p)
        z1 = np.asarray(x @ params["W1"], np.float64)
        closed = np.broadcast_to(z1[:, None] / s.n_out, (s.hidden, s.n_out))
        closed_err = np.linalg.norm(np.asarray(g0["W2"]) - closed) / np.linalg.norm(closed)
        if progress:
            progress(1)

        truth = np.asarray(g0["W2"])[: s.rows]
        obj = Objective(loss)
        rows_mask = np.zeros((s.hidden, s.n_out), bool)
        rows_mask[: s.rows] = True
        masks = {
            "w2_rows": {"W1": False, "W2": rows_mask},
            "w2": {"W1": False, "W2": True},
            "all": {"W1": True, "W2": True},
        }
        est = Regression(sigma=s.sigma, samples=s.samples)
        estimates, errors = {}, {}
        for scope in SCOPES:
            # One compiled estimate per scope (eagerly, each small op compiles on its own).
            run = eqx.filter_jit(lambda m: m.estimate(obj, params, (), key=k_est)[0])
            g = run(Masked(est, masks[scope]))
            e = np.asarray(g["W2"])[: s.rows]
            estimates[scope] = e
            errors[scope] = float(np.linalg.norm(e - truth) / np.linalg.norm(truth))
            if progress:
                progress(1)

        values = np.linspace(-s.scatter_span, s.scatter_span, s.scatter_points)
        along = []
        for i, j in ((0, 0), (0, 1), (1, 0)):
            batch = jax.vmap(
                lambda v, i=i, j=j: loss({**params, "W2": params["W2"].at[i, j].add(v)})
            )
            along.append(np.asarray(batch(jnp.asarray(values, params["W2"].dtype))))
        slopes = [float(np.polyfit(values, y, 1)[0]) for y in along]

        data = {
            "row_spread_start": row_spread(g0),
            "row_spread_end": row_spread(g1),
            "closed_form_error": float(closed_err),
            **{f"error_{k}": v for k, v in errors.items()},
            "scatter_slopes": np.asarray(slopes),
        }
        arrays = {
            "grad_start": np.asarray(g0["W2"]),
            "grad_end": np.asarray(g1["W2"]),
            "learning_loss": np.asarray(losses),
            "truth_rows": truth,
            **{f"est_{k}": v for k, v in estimates.items()},
            "scatter_values": values,
            "scatter_losses": np.stack(along),
        }
        return _ToyResult(self, s, data, arrays)
