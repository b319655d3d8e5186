"""Figures (matplotlib, Agg). Plotting only: every function takes results, never simulates."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from weakgrad.landscape import Landscape1D  # noqa: E402

__all__ = ["plot_landscape", "save_figure"]


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save atomically (temporary file renamed into place) and close the figure."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
    return path


def plot_landscape(result: Landscape1D, *, title: str | None = None):
    """Loss (left axis, blue) and number of spikes (right axis, orange) against ``w``, as in
    the study's first figures; a band of one standard error where there are trials."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(result.w, result.loss_mean, color="tab:blue", lw=1.0, label="loss")
    if result.trials > 1:
        ax.fill_between(
            result.w,
            result.loss_mean - result.loss_sem,
            result.loss_mean + result.loss_sem,
            color="tab:blue",
            alpha=0.25,
            lw=0,
        )
    ax.set_xlabel("input weight w (current = w * I0)")
    ax.set_ylabel("loss: mean output over tau", color="tab:blue")
    ax.tick_params(axis="y", labelcolor="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(result.w, result.spikes_mean, color="tab:orange", lw=1.0, label="spikes")
    ax2.set_ylabel(
        "number of spikes" + (" (trial mean)" if result.trials > 1 else ""), color="tab:orange"
    )
    ax2.tick_params(axis="y", labelcolor="tab:orange")
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
