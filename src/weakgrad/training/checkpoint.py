"""A run's files: checkpoints (``.npz``, written atomically) and the metrics CSV (one row
per step, appended and flushed as the run goes; cut back to the checkpoint on resume)."""

from __future__ import annotations

import csv
import dataclasses
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.errors import ConfigError
from weakgrad.io import format_cell, write_csv, write_npz

__all__ = [
    "METRIC_COLUMNS",
    "Metrics",
    "MetricsLog",
    "best_in_metrics",
    "check_metrics_for_resume",
    "load_checkpoint",
    "non_finite_leaves",
    "rank",
    "read_metrics",
    "save_checkpoint",
]

METRIC_COLUMNS = ("step", "loss", "evals", "seconds", "val_loss", "val_accuracy")


def save_checkpoint(path: Path, state: Any, step: int, seconds: float, **extra: float) -> None:
    """The leaves of ``state`` with the step and elapsed seconds, written atomically."""
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    write_npz(path, step=step, seconds=seconds, n_leaves=len(leaves), **extra, **arrays)


_RESTORE = "restore it from a copy, or train again into a new --out"


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``; an empty, truncated or otherwise unreadable file is a
    :class:`ConfigError` naming it (not numpy's EOFError, which the CLI shows as
    "Aborted.")."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            return {k: data[k] for k in data.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{path} is not a readable checkpoint ({why}): it is empty, truncated or was "
            f"edited; {_RESTORE}."
        ) from None


def load_checkpoint(path: Path, template: Any) -> tuple[Any, int, float]:
    """(state shaped as ``template``, step, seconds) from ``path``. A file that cannot be
    read, lacks an array, or does not match ``template`` is a :class:`ConfigError` naming
    the file."""
    data = _read_npz(path)
    leaves, treedef = jax.tree_util.tree_flatten(template)
    missing = [k for k in ("n_leaves", "step", "seconds") if k not in data]
    missing += [f"leaf_{i}" for i in range(len(leaves)) if f"leaf_{i}" not in data]
    if missing:
        raise ConfigError(
            f"{path} is an incomplete checkpoint (no {', '.join(missing[:4])}"
            f"{', ...' if len(missing) > 4 else ''}); {_RESTORE}."
        )
    scalars = {k: data[k] for k in ("n_leaves", "step", "seconds")}
    if not all(v.ndim == 0 for v in scalars.values()) or not all(
        np.issubdtype(scalars[k].dtype, np.integer) for k in ("n_leaves", "step")
    ):
        raise ConfigError(f"{path} has malformed step, seconds or n_leaves; {_RESTORE}.")
    step, seconds = int(scalars["step"]), float(scalars["seconds"])
    if step < 1 or not np.isfinite(seconds) or seconds < 0:
        raise ConfigError(
            f"{path} says step {step} after {seconds} s; a checkpoint has a step >= 1 and "
            f"finite seconds >= 0: it was edited; {_RESTORE}."
        )
    if int(scalars["n_leaves"]) != len(leaves):
        raise ConfigError(
            f"checkpoint {path} does not match this configuration ({int(scalars['n_leaves'])} "
            f"arrays, expected {len(leaves)}); resume with the run's own config.json."
        )
    loaded = []
    for i, ref in enumerate(leaves):
        arr = data[f"leaf_{i}"]
        if arr.shape != np.shape(ref):
            raise ConfigError(
                f"checkpoint {path} array {i} has shape {arr.shape}, expected "
                f"{np.shape(ref)}; resume with the run's own config.json."
            )
        loaded.append(jnp.asarray(arr, dtype=jnp.asarray(ref).dtype))
    return jax.tree_util.tree_unflatten(treedef, loaded), step, seconds


def finite_leaves(state: Any) -> Array:
    """Traceable: one flag per leaf of ``state``, False where a floating-point leaf holds a
    NaN or an infinity (other leaves: True)."""
    flags = [
        jnp.all(jnp.isfinite(x)) if jnp.issubdtype(jnp.result_type(x), jnp.inexact) else True
        for x in jax.tree_util.tree_leaves(state)
    ]
    return jnp.asarray(flags, bool)


def non_finite_leaves(state: Any) -> list[int]:
    """Indices of the floating-point leaves of ``state`` holding a NaN or an infinity (one
    transfer to the host)."""
    return [int(i) for i in np.flatnonzero(~np.asarray(jax.device_get(finite_leaves(state))))]


def check_metrics_for_resume(path: Path, start: int, seconds: float) -> None:
    """Before a resume from a checkpoint at step ``start`` (written after ``seconds``): the
    metrics file must exist, start with the header :data:`METRIC_COLUMNS` and hold one
    complete row for each step ``0 .. start - 1``, the last of them written at the same
    time as the checkpoint (as the loop writes them). Rows of later steps (and a torn last
    line) are allowed: the resume cuts them. Anything else is a :class:`ConfigError`: the
    file or the checkpoint was deleted, emptied or edited, and continuing would lose or
    misalign the run's history."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} is missing: the run's history (one row per step) cannot be continued "
            f"from the checkpoint at step {start}; {_RESTORE}."
        )
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ConfigError(f"{path} is not a metrics CSV ({e}); {_RESTORE}.") from None
    if not rows:
        raise ConfigError(
            f"{path} is empty (no header, no rows) but the checkpoint is at step {start}; "
            f"{_RESTORE}."
        )
    if tuple(rows[0]) != METRIC_COLUMNS:
        raise ConfigError(
            f"{path} has no valid header (its first line is {','.join(rows[0])[:80]!r}; "
            f"expected {','.join(METRIC_COLUMNS)}); {_RESTORE}."
        )
    before = [r for r in _complete(rows[1:]) if int(r[0]) < start]
    steps = [int(r[0]) for r in before]
    if steps != list(range(start)):
        raise ConfigError(
            f"{path} has rows for {len(steps)} of the {start} steps before the checkpoint "
            f"(checkpoint.npz, step {start}): one of the two was edited, truncated or comes "
            f"from another run, and resuming would skip or repeat steps; {_RESTORE}."
        )
    if not _same_time(before[-1][3], seconds):
        raise ConfigError(
            f"{path.parent / 'checkpoint.npz'} (step {start}, written at {seconds:.6g} s) "
            "does not match "
            f"{path.name}'s row of step {start - 1}: the checkpoint's step was edited or the "
            f"files come from different runs; {_RESTORE}."
        )


def _complete(rows: list[list[str]]) -> list[list[str]]:
    return [r for r in rows if len(r) == len(METRIC_COLUMNS) and r[0].isdigit()]


def _same_time(text: str, seconds: float) -> bool:
    try:
        return float(text) == float(format_cell(seconds))
    except ValueError:
        return False


def rank(val_loss: float, val_acc: float) -> tuple[float, float]:
    """Sort key of an evaluation, larger is better: accuracy first (NaN where the task has
    none), then lower loss."""
    return (val_acc if np.isfinite(val_acc) else -np.inf, -val_loss)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """A ``metrics.csv`` as arrays: the batch loss per step (``step`` from 0), and at each
    evaluation (``eval_step``: steps done) the validation loss and accuracy (NaN where the
    task has none)."""

    step: np.ndarray
    loss: np.ndarray
    eval_step: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray


def read_metrics(path: Path) -> Metrics:
    """The rows of a metrics file (:class:`MetricsLog`) as :class:`Metrics`."""
    rows = _rows(path)
    ev = [r for r in rows if r["val_loss"]]
    return Metrics(
        step=np.asarray([int(r["step"]) for r in rows], np.int64),
        loss=np.asarray([float(r["loss"]) for r in rows], np.float64),
        eval_step=np.asarray([int(r["step"]) + 1 for r in ev], np.int64),
        val_loss=np.asarray([float(r["val_loss"]) for r in ev], np.float64),
        val_accuracy=np.asarray(
            [float(r["val_accuracy"]) if r["val_accuracy"] else np.nan for r in ev], np.float64
        ),
    )


def best_in_metrics(path: Path) -> tuple[float, float]:
    """The best :func:`rank` among the evaluations in a metrics file."""
    m = read_metrics(path)
    return max((rank(v, a) for v, a in zip(m.val_loss, m.val_accuracy, strict=True)),
               default=(-np.inf, -np.inf))  # fmt: skip


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
            keep = [r for r in _complete(rows[1:]) if int(r[0]) < start]
            write_csv(self.path, rows[0], keep)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def write(self, row: dict[str, Any]) -> None:
        # Flushed every row: a killed process loses nothing. Synced to disk only by sync(),
        # before each checkpoint, not at every step.
        self._writer.writerow([format_cell(row[c]) for c in METRIC_COLUMNS])
        self._file.flush()

    def sync(self) -> None:
        """Put the rows on disk (call before writing a checkpoint that counts them, so that
        after a power loss the rows are never behind the checkpoint)."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self.sync()
        self._file.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
