"""Figures (matplotlib, Agg). Plotting only: every function takes results, never simulates."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:  # plotting needs only the fields, not JAX
    from weakgrad.analysis.landscape import Landscape1D
    from weakgrad.training.checkpoint import Metrics

__all__ = [
    "plot_landscape",
    "save_figure",
    "plot_gradcheck",
    "plot_gradient_heatmap",
    "plot_descent",
    "plot_landscape_2d",
    "plot_score_vs_quadrature",
    "plot_training",
    "plot_raster",
]


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save atomically (temporary file renamed into place) and close the figure."""
    from weakgrad.io import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def plot_landscape(
    result: Landscape1D,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    smooth: np.ndarray | None = None,
):
    """Loss (left axis, blue) and number of spikes (right axis, orange) against ``w``, as in
    the study's first figures; a band of one standard error where there are trials; the
    mollified loss (black) where given. A point marker where the curve is many-valued."""
    fig, ax = plt.subplots(figsize=(7, 4))
    # Zooms of many-valued curves: points only (a line would draw false branches).
    style = "-" if len(result.w) < 500 else "none"
    ax.plot(
        result.w,
        result.loss_mean,
        color="tab:blue",
        lw=0.8,
        ls=style,
        marker=".",
        ms=1.5,
        label="loss",
    )
    if smooth is not None:
        ax.plot(result.w, smooth, color="black", lw=1.2, label="mollified loss")
        ax.legend(fontsize=8, loc="upper right")
    if result.trials > 1:
        ax.fill_between(
            result.w,
            result.loss_mean - result.loss_sem,
            result.loss_mean + result.loss_sem,
            color="tab:blue",
            alpha=0.25,
            lw=0,
        )
    ax.set_xlabel(xlabel or "input weight w (current = w * I0)")
    ax.set_ylabel("loss: mean output over tau", color="tab:blue")
    ax.tick_params(axis="y", labelcolor="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(result.w, result.spikes_mean, color="tab:orange", lw=1.0, label="spikes")
    ax2.set_ylabel(
        "number of spikes" + (" (trial mean)" if result.trials > 1 else ""), color="tab:orange"
    )
    ax2.tick_params(axis="y", labelcolor="tab:orange")
    if np.isfinite(result.current).any():
        top = ax.secondary_xaxis(
            "top",
            functions=(lambda w: w * _i0(result), lambda c: c / _i0(result)),
        )
        top.set_xlabel("input current (uA/cm^2)")
    trials = f"{result.trials} trial" + ("s" if result.trials != 1 else "")
    ax.set_title(title or f"Single HH neuron loss landscape ({trials})")
    fig.tight_layout()
    return fig


def _i0(result: Landscape1D) -> float:
    nz = result.w != 0
    if not nz.any():
        return 1.0
    return float((result.current[nz] / result.w[nz]).mean())


def _grouped(summary: list[dict], x_key: str, line_key: str):
    lines: dict = {}
    for row in summary:
        lines.setdefault((row["estimator"], row[line_key]), []).append(row)
    for rows in lines.values():
        rows.sort(key=lambda r: r[x_key])
    return lines


def plot_gradcheck(summary: list[dict], *, x: str, title: str = ""):
    """Relative L2 error and cosine similarity against ``x`` ("samples" or "sigma"), one line
    per estimator and value of the other grid variable, with standard-error bars."""
    other = "sigma" if x == "samples" else "samples"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    estimators = sorted({r["estimator"] for r in summary})
    colors = {e: plt.cm.tab10(i % 10) for i, e in enumerate(estimators)}
    values = sorted({r[other] for r in summary})
    styles = ["-", "--", ":", "-."]
    for (est, val), rows in _grouped(summary, x, other).items():
        xs = [r[x] for r in rows]
        style = styles[values.index(val) % len(styles)]
        label = f"{est}, {other}={val:g}"
        for ax, col in ((ax1, "rel_error"), (ax2, "cosine")):
            ys = np.asarray([r[col] for r in rows])
            es = np.nan_to_num(np.asarray([r[col + "_sem"] for r in rows]))
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                color=colors[est],
                ls=style,
                marker="o",
                ms=3,
                capsize=2,
                label=label,
            )
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel(
            "samples S per estimate" if x == "samples" else "perturbation sigma (parameter units)"
        )
        ax.grid(alpha=0.3)
    errors = np.asarray([r["rel_error"] for r in summary], float)
    if np.any(np.isfinite(errors) & (errors > 0)):
        ax1.set_yscale("log")  # else (every estimate failed: NaN or inf) a linear axis
    ax1.set_ylabel("relative L2 error |g - g_ref| / |g_ref|")
    ax2.set_ylabel("cosine similarity with reference")
    ax2.set_ylim(-0.1, 1.05)
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_gradient_heatmap(
    reference: np.ndarray, estimate: np.ndarray, *, title: str = "", label: str = "estimate"
):
    """Reference and estimated gradient of one weight matrix side by side, on one color scale
    (the study's "Comparison" figure)."""
    lim = float(np.nanmax(np.abs(reference))) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, m, name in ((axes[0], reference, "reference (autodiff)"), (axes[1], estimate, label)):
        im = ax.imshow(
            m.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest"
        )
        ax.set_title(name)
        ax.set_xlabel("presynaptic neuron (row of W)")
    axes[0].set_ylabel("postsynaptic neuron (column of W)")
    fig.colorbar(im, ax=axes, label="dL/dW")
    fig.suptitle(title)
    return fig


def plot_descent(w, loss, path, *, smooth=None, title: str = ""):
    """The sampled loss curve (and its mollified version), with the descent path on it."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(w, loss, color="tab:blue", lw=0.8, label="sampled loss")
    if smooth is not None:
        ax.plot(w, smooth, color="tab:orange", lw=1.2, label="mollified")
    on = smooth if smooth is not None else loss
    idx = np.searchsorted(w, path.w)
    sc = ax.scatter(
        path.w,
        np.asarray(on)[np.clip(idx, 0, len(w) - 1)],
        c=path.step,
        cmap="viridis",
        s=18,
        zorder=3,
        label="path",
    )
    fig.colorbar(sc, ax=ax, label="step")
    ax.set_xlabel("input weight w (current = w * I0, uA/cm^2)")
    ax.set_ylabel("loss: mean output over tau")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_landscape_2d(result, *, title: str = ""):
    """Heat map with contours of a 2-D landscape over two directions."""
    fig, ax = plt.subplots(figsize=(6, 5))
    extent = (result.beta[0], result.beta[-1], result.alpha[0], result.alpha[-1])
    im = ax.imshow(result.loss_mean, origin="lower", extent=extent, aspect="auto", cmap="viridis")
    ax.contour(
        result.beta, result.alpha, result.loss_mean, colors="white", linewidths=0.5, levels=10
    )
    fig.colorbar(im, ax=ax, label="loss: mean output over tau")
    ax.set_xlabel("step along direction 2 (filter-normalised)")
    ax.set_ylabel("step along direction 1 (filter-normalised)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_score_vs_quadrature(result, *, title: str = ""):
    """Smoothed-gradient estimates along x: Monte-Carlo log trick vs quadrature, with the
    reference and the loss itself."""
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(1, 2))
    ax0.plot(result.x, result.loss, color="gray", lw=1)
    ax0.set_ylabel("toy loss f(x)")
    ax1.plot(result.x, result.reference, color="black", lw=2, label="reference (fine grid)")
    colors = plt.cm.tab10.colors
    for k, s in enumerate(sorted(result.monte_carlo)):
        ax1.plot(
            result.x,
            result.monte_carlo[s],
            color=colors[k],
            lw=0.8,
            label=f"Monte-Carlo log trick, S={s}",
        )
        ax1.plot(
            result.x,
            result.quadrature[s],
            color=colors[k],
            lw=1.5,
            ls="--",
            label=f"quadrature, {s} nodes",
        )
    ax1.set_xlabel("x (parameter)")
    ax1.set_ylabel(f"gradient of smoothed loss (sigma={result.sigma:g})")
    ax1.legend(fontsize=7)
    ax0.set_title(title)
    fig.tight_layout()
    return fig


def plot_training(m: Metrics):
    """Training loss per step, and validation loss / accuracy where evaluated, of a run's
    :class:`~weakgrad.training.checkpoint.Metrics`."""
    ev_step = m.eval_step - 1  # the step (from 0) of each evaluation, as the loss's x
    acc = np.isfinite(m.val_accuracy)
    fig, axes = plt.subplots(1, 2 if acc.any() else 1, figsize=(11 if acc.any() else 6, 4),
                             squeeze=False)  # fmt: skip
    ax1 = axes[0, 0]
    ax1.plot(m.step, m.loss, lw=0.8, label="training batch")
    if ev_step.size:
        ax1.plot(ev_step, m.val_loss, "o-", ms=3, label="validation")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    if acc.any():
        ax2 = axes[0, 1]
        ax2.plot(ev_step[acc], 100 * m.val_accuracy[acc], "o-", ms=3)
        ax2.set_xlabel("step")
        ax2.set_ylabel("validation accuracy (%)")
        ax2.set_ylim(0, 100)
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_raster(target: np.ndarray, output: np.ndarray, dt_ms: float, *, title: str = ""):
    """Spike rasters of target and output trains (``(steps, cells)`` 0/1), cell by cell."""
    fig, ax = plt.subplots(figsize=(9, 4))
    n = target.shape[1]
    for j in range(n):
        t = np.flatnonzero(target[:, j]) * dt_ms
        o = np.flatnonzero(output[:, j]) * dt_ms
        ax.vlines(t, j + 0.05, j + 0.45, color="black", lw=1, label="target" if j == 0 else None)
        ax.vlines(o, j + 0.55, j + 0.95, color="tab:red", lw=1, label="output" if j == 0 else None)
    ax.set_yticks(np.arange(n) + 0.5, [str(j) for j in range(n)])
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("cell (black: target, red: network)")
    ax.set_xlim(0, target.shape[0] * dt_ms)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return fig
