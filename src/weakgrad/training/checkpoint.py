"""A run's files: checkpoints (``.npz``, written atomically) and the metrics CSV (one row
per step, appended and flushed as the run goes; cut back to the checkpoint on resume)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakgrad.io import write_csv, write_npz

__all__ = [
    "METRIC_COLUMNS",
    "MetricsLog",
    "best_in_metrics",
    "load_checkpoint",
    "rank",
    "save_checkpoint",
]

METRIC_COLUMNS = ("step", "loss", "evals", "seconds", "val_loss", "val_accuracy")


def save_checkpoint(path: Path, state: Any, step: int, seconds: float, **extra: float) -> None:
    """The leaves of ``state`` with the step and elapsed seconds, written atomically."""
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    write_npz(path, step=step, seconds=seconds, n_leaves=len(leaves), **extra, **arrays)


def load_checkpoint(path: Path, template: Any) -> tuple[Any, int, float]:
    """(state shaped as ``template``, step, seconds) from ``path``; a mismatch says so."""
    with np.load(path) as data:
        leaves, treedef = jax.tree_util.tree_flatten(template)
        if int(data["n_leaves"]) != len(leaves):
            raise ValueError(
                f"checkpoint {path} does not match this configuration ({int(data['n_leaves'])} "
                f"arrays, expected {len(leaves)}); resume with the run's own config.json."
            )
        loaded = []
        for i, ref in enumerate(leaves):
            arr = data[f"leaf_{i}"]
            if arr.shape != np.shape(ref):
                raise ValueError(
                    f"checkpoint {path} array {i} has shape {arr.shape}, expected "
                    f"{np.shape(ref)}; resume with the run's own config.json."
                )
            loaded.append(jnp.asarray(arr, dtype=jnp.asarray(ref).dtype))
        return (
            jax.tree_util.tree_unflatten(treedef, loaded),
            int(data["step"]),
            float(data["seconds"]),
        )


def rank(val_loss: float, val_acc: float) -> tuple[float, float]:
    """Sort key of an evaluation, larger is better: accuracy first (NaN where the task has
    none), then lower loss."""
    return (val_acc if np.isfinite(val_acc) else -np.inf, -val_loss)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def best_in_metrics(path: Path) -> tuple[float, float]:
    """The best :func:`rank` among the evaluations in a metrics file."""
    best = (-np.inf, -np.inf)
    for r in _rows(path):
        if r["val_loss"]:
            acc = float(r["val_accuracy"]) if r["val_accuracy"] else float("nan")
            best = max(best, rank(float(r["val_loss"]), acc))
    return best


def _fmt(v: Any) -> Any:
    return f"{v:.9g}" if isinstance(v, float) else v


class MetricsLog:
    """``metrics.csv``: :data:`METRIC_COLUMNS`, one row per step, each flushed to disk as it
    is written, so a crash loses at most the current step. Opened at ``start`` > 0 (a
    resume), the rows of steps ``>= start`` (and a torn last line) are cut first, atomically.
    Use as a context manager."""

    def __init__(self, path: Path, start: int = 0):
        self.path = Path(path)
        if start == 0 or not self.path.exists():
            write_csv(self.path, METRIC_COLUMNS, [])
        else:
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            keep = [r for r in rows[1:] if len(r) == len(METRIC_COLUMNS) and r[0].isdigit()
                    and int(r[0]) < start]  # fmt: skip
            write_csv(self.path, rows[0], keep)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow([_fmt(row[c]) for c in METRIC_COLUMNS])
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def read(path: Path) -> list[dict[str, str]]:
        """The rows of a metrics file, as strings by column."""
        return _rows(path)
