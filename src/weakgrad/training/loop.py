"""The training loop: any estimator with any optax optimiser on any task, evaluation on a
cadence, a parameter average (EMA), keep-best and exact resume.

``train(cfg, out)`` runs a :class:`~weakgrad.config.TrainConfig` into the folder ``out``:

- ``config.json``: the resolved configuration (``config_from_dict`` reads it back);
- ``metrics.csv``: one row per step (``step``, ``loss``, ``evals``, ``seconds``, and
  ``val_loss``, ``val_accuracy`` on evaluation steps), flushed after every row, so a crash
  loses at most the current step;
- ``checkpoint.npz``: parameters, estimator and optimiser state, step and elapsed time,
  written atomically every ``checkpoint_every`` steps and at the end;
- with ``train.ema_decay``, validation and test use a moving average of the parameters
  (kept in the checkpoint, so resume stays exact);
- with ``train.keep_best``, ``best.npz``: the state at the best evaluation so far (highest
  validation accuracy, then lowest validation loss), written atomically when it improves;
- at the end ``summary.json`` (``steps``, ``seconds``, ``test_accuracy``, ...).

It returns a :class:`TrainResult` (the summary as a mapping); its ``save_figures(out)``
draws ``training.png`` and the task's figures (the CLI calls it). ``train(cfg, out,
resume=True)`` continues from ``checkpoint.npz``: batches and keys are functions of the
step number, so a resumed run ends with the same parameters as an uninterrupted one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from weakgrad.config import ConfigError, TrainConfig
from weakgrad.io import write_json
from weakgrad.sim.network import SimulationError
from weakgrad.tasks.base import AbstractTask
from weakgrad.training.checkpoint import (
    METRIC_COLUMNS,
    MetricsLog,
    best_in_metrics,
    check_metrics_for_resume,
    finite_leaves,
    load_checkpoint,
    non_finite_leaves,
    rank,
    read_metrics,
    save_checkpoint,
)
from weakgrad.training.resume import HISTORY, append_history, check_resume

__all__ = ["METRIC_COLUMNS", "TrainResult", "eval_key", "initial_state", "train", "evaluated"]


def train_key(seed: int) -> Array:
    return jax.random.split(jax.random.key(seed))[1]


def eval_key(seed: int) -> Array:
    """The key every evaluation of a run uses (validation and test alike)."""
    return jax.random.fold_in(train_key(seed), 2**31 - 1)


def initial_state(params: Any, est: Any, opt: Any, ema: float) -> tuple:
    """(params, estimator state, optimiser state[, EMA sum]). With an average, the state
    carries its un-normalised sum: z <- ema z + (1 - ema) params."""
    state = (params, est.init(params), opt.init(params))
    return state + ((jax.tree.map(jnp.zeros_like, params),) if ema else ())


def evaluated(state: tuple, steps_done: int, ema: float) -> Any:
    """The parameters evaluated after ``steps_done`` steps: the bias-corrected average."""
    if not ema:
        return state[0]
    return jax.tree.map(lambda z: z / (1 - ema**steps_done), state[3])


# Module level, with the estimator and optimiser as arguments: a second train() in the same
# process with the same configuration and shapes reuses the compiled step.
@eqx.filter_jit
def _step(state: tuple, obj: Any, key: Array, est: Any, opt: Any, ema: float) -> tuple:
    params, est_state, opt_state = state[:3]
    g, est_state, info = est.estimate(obj, params, est_state, key=key)
    updates, opt_state = opt.update(g, opt_state, params)
    params = optax.apply_updates(params, updates)
    new = (params, est_state, opt_state)
    if ema:
        new += (jax.tree.map(lambda z, p: ema * z + (1 - ema) * p, state[3], params),)
    # Whether the new state is finite, computed in the same compiled step: the loop reads
    # it with the loss in one transfer instead of a second dispatch per step.
    return new, info.loss, info.evals, jnp.all(finite_leaves(new))


def build(cfg: TrainConfig) -> tuple[AbstractTask, Any, Any]:
    """(task, estimator, optimiser) of a config, the per-layer lists checked against the
    task's network."""
    task = cfg.task.build(cfg)
    n = len(task.initial_params())
    for section in (cfg.estimator, cfg.optimizer):
        section.check_layers(n)
    est = cfg.estimator.build(dt_ms=cfg.task.time_step)
    opt = cfg.optimizer.build(cfg.train.steps)
    return task, est, opt


class TrainResult(Mapping[str, Any]):
    """A run's summary (a read-only mapping: ``result["test_accuracy"]``), with what its
    figures need: the task, the evaluated parameters and the evaluation key."""

    def __init__(self, summary: dict[str, Any], task: AbstractTask, params: Any, key: Array):
        self.summary, self.task, self.params, self.key = summary, task, params, key

    def __getitem__(self, k: str) -> Any:
        return self.summary[k]

    def __iter__(self) -> Iterator[str]:
        return iter(self.summary)

    def __len__(self) -> int:
        return len(self.summary)

    def __repr__(self) -> str:
        return f"TrainResult({self.summary!r})"

    def describe(self) -> str:
        """One line: steps, seconds and the headline scores."""
        s = self.summary
        if "test_accuracy" in s:
            result = (
                f"test accuracy {100 * s['test_accuracy']:.1f}% ({s['test_size']} held-out digits)"
            )
        else:
            result = (
                f"final loss {s['final_loss']:.4g}; {s['output_spikes']} output vs "
                f"{s['target_spikes']} target spikes (raster.png)"
            )
        if "noise_free_test_accuracy" in s:
            result += (
                f", predictions averaged over {s['eval_draws']} noise draws (noise-free "
                f"network: {100 * s['noise_free_test_accuracy']:.1f}%)"
            )
        if "best" in s:
            b = s["best"]
            if "test_accuracy" in b:
                what = f"test accuracy {100 * b['test_accuracy']:.1f}%"
            else:
                what = f"loss {b['final_loss']:.4g}"
            result += f"; best validation at step {b['step']} (best.npz): {what}"
        return f"{s['steps']} steps in {s['seconds']:.1f} s, {result}"

    def figures(self) -> dict[str, Any]:
        """``training.png`` is drawn from the metrics file; these are the task's own."""
        return self.task.figures(self.params, self.key)

    def save_figures(self, out: str | os.PathLike) -> list[Path]:
        """Draw ``training.png`` from ``out/metrics.csv`` and the task's figures into ``out``."""
        from weakgrad.plots import plot_training, save_figure

        out = Path(out)
        paths = [save_figure(plot_training(read_metrics(out / "metrics.csv")),
                             out / "training.png")]  # fmt: skip
        for name, fig in self.figures().items():
            paths.append(save_figure(fig, out / name))
        return paths


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    progress: Callable[[int, dict], None] | None = None,
    lock: bool = True,
) -> TrainResult:
    """Train as ``cfg`` says, writing into ``out``; returns the summary (also in
    ``out/summary.json``). ``progress(step, row)`` is called after every step.

    The folder is held with :func:`weakgrad.io.folder_lock` for the whole run (a second
    writer is refused); ``lock=False`` for a caller that already holds it. A resume is
    checked before anything is written: the configuration against the run's own
    (:mod:`.resume`), the checkpoint and ``metrics.csv`` against each other. A non-finite
    loss, state or validation loss stops the run (:class:`SimulationError`) before anything
    of that step is written.

    Several processes (:mod:`weakgrad.distributed`): every process calls ``train`` with the
    same arguments; each step's population is split over all their devices, and only
    process 0 writes ``out`` (the others a scratch folder, removed at the end)."""
    if jax.process_index() != 0:
        return _train_unwritten(cfg, Path(out), resume)
    if not lock:
        return _train(cfg, Path(out), resume, progress)
    from weakgrad.io import folder_lock

    with folder_lock(out, what="weakgrad train"):
        return _train(cfg, Path(out), resume, progress)


# What a resume reads from a run folder.
_RUN_FILES = ("config.json", "checkpoint.npz", "metrics.csv", "best.npz", HISTORY)


def _train_unwritten(cfg: TrainConfig, out: Path, resume: bool) -> TrainResult:
    """A process other than 0 of a multi-process run (:mod:`weakgrad.distributed`): the
    same steps as process 0, whose devices hold their share of every population, into a
    private scratch folder, removed at the end; only process 0 writes ``out``. A resume
    reads the run from ``out`` (a folder every process sees, e.g. on a shared filesystem)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="weakgrad-train-") as scratch:
        if resume:
            for name in _RUN_FILES:
                if (out / name).exists():
                    shutil.copy2(out / name, Path(scratch) / name)
        return _train(cfg, Path(scratch), resume, None)


def _diverged(step: int, what: str, kept: int | None) -> SimulationError:
    last = f"the last checkpoint (step {kept}) is kept" if kept else "no checkpoint was written"
    return SimulationError(
        f"step {step}: {what} is not finite (the parameters diverged or a simulation blew "
        f"up); training stopped before writing anything of step {step} and {last}. Lower "
        "optimizer.learning_rate, estimator.sigma or task.dt_ms."
    )


def _train(
    cfg: TrainConfig, out: Path, resume: bool, progress: Callable[[int, dict], None] | None
) -> TrainResult:
    out.mkdir(parents=True, exist_ok=True)
    ckpt, best_path = out / "checkpoint.npz", out / "best.npz"
    if not resume and ckpt.exists():
        raise ConfigError(
            f"{out} already holds a run (checkpoint.npz); pass --resume to continue it or "
            "choose another --out."
        )
    if resume and not ckpt.exists() and not (out / "config.json").exists():
        # A run killed before its first checkpoint has config.json and restarts from step 0;
        # a folder with neither holds no run at all.
        raise ConfigError(
            f"--resume: {out} holds no run to continue (no config.json, no checkpoint.npz); "
            "drop --resume to start a new run there, or name the run's folder with --out."
        )
    resuming = resume and ckpt.exists()
    changes: list = []
    if resuming:  # before building anything: a refused change costs nothing
        old_cfg, changes = check_resume(out / "config.json", cfg)
    tr = cfg.train
    task, est, opt = build(cfg)
    ema = tr.ema_decay
    state = initial_state(task.initial_params(), est, opt, ema)
    start, elapsed = 0, 0.0
    best = (-np.inf, -np.inf)
    if resuming:
        state, start, elapsed = load_checkpoint(ckpt, state)
        _check_resumed_state(out, cfg, old_cfg, state, start, elapsed)
    if tr.keep_best and start > 0:
        # The bar is the best evaluation before the checkpoint. A best.npz from after it is
        # overwritten when the (deterministic) rerun reaches that evaluation again.
        best = best_in_metrics(out / "metrics.csv")
    write_json(out / "config.json", cfg.to_dict())
    if resuming:
        append_history(out, start, changes)

    k_train, k_eval = train_key(tr.seed), eval_key(tr.seed)
    kept = start or None
    with MetricsLog(out / "metrics.csv", start) as log:
        t0 = time.perf_counter() - elapsed
        for step in range(start, tr.steps):
            key = jax.random.fold_in(k_train, step)
            state, *scalars = _step(state, task.objective_at(step), key, est, opt, ema)
            loss, evals, finite = jax.device_get(scalars)  # the one host sync of a step
            loss = float(loss)
            if not np.isfinite(loss):
                raise _diverged(step, f"the training loss ({loss})", kept)
            if not finite:
                raise _diverged(step, "the state after the update (parameters or optimiser)", kept)
            row: dict[str, Any] = {"step": step, "loss": loss, "evals": int(evals),
                                   "val_loss": "", "val_accuracy": ""}  # fmt: skip
            last = step + 1 == tr.steps
            if (step + 1) % tr.eval_every == 0 or last:
                val_loss, val_acc = task.validate(evaluated(state, step + 1, ema), k_eval)
                if not np.isfinite(val_loss):
                    raise _diverged(step, f"the validation loss ({val_loss})", kept)
                row["val_loss"] = val_loss
                row["val_accuracy"] = val_acc if np.isfinite(val_acc) else ""
                if tr.keep_best and rank(val_loss, val_acc) > best:
                    best = rank(val_loss, val_acc)
                    save_checkpoint(best_path, state, step + 1, time.perf_counter() - t0,
                                    val_loss=val_loss, val_accuracy=val_acc)  # fmt: skip
            row["seconds"] = time.perf_counter() - t0
            log.write(row)
            if (step + 1) % tr.checkpoint_every == 0 or last:
                log.sync()  # the rows the checkpoint counts reach the disk first
                save_checkpoint(ckpt, state, step + 1, row["seconds"])
                kept = step + 1
            if progress is not None:
                progress(step, row)
    seconds = time.perf_counter() - t0
    # On this process's host: the figures process 0 draws alone then need no other process.
    params = jax.device_get(evaluated(state, tr.steps, ema))
    summary: dict[str, Any] = {"task": cfg.task.name, "steps": tr.steps, "seconds": seconds}
    summary.update(task.score(params, k_eval))
    if tr.keep_best and best_path.exists():
        best_state, best_step, _ = load_checkpoint(best_path, state)
        with np.load(best_path) as d:
            summary["best"] = {"step": best_step, "val_loss": float(d["val_loss"]),
                               "val_accuracy": float(d["val_accuracy"])}  # fmt: skip
        scores = task.score(evaluated(best_state, best_step, ema), k_eval)
        summary["best"].update({k: v for k, v in scores.items() if k != "data"})
    write_json(out / "summary.json", summary)
    return TrainResult(summary, task, params, k_eval)


def _check_resumed_state(
    out: Path, cfg: TrainConfig, old_cfg: TrainConfig, state: Any, start: int, elapsed: float
) -> None:
    """The checkpoint agrees with the run: a step the run could have reached, no more than
    the new ``train.steps``, finite arrays, and metrics rows up to it (written at the same
    time); a best.npz that can be read. Raises ConfigError before anything is written."""
    ckpt = out / "checkpoint.npz"
    if start > old_cfg.train.steps:
        raise ConfigError(
            f"{ckpt} says step {start}, but the run (config.json) trains "
            f"{old_cfg.train.steps} steps: the checkpoint was edited or comes from another run, "
            "and resuming would skip training; restore it, or train again into a new --out."
        )
    if start > cfg.train.steps:
        raise ConfigError(
            f"train.steps = {cfg.train.steps} is below the checkpoint's step ({start} in "
            f"{ckpt}): a resumed run cannot undo steps; use train.steps >= {start}, or "
            "evaluate the run as it is (weakgrad evaluate)."
        )
    bad = non_finite_leaves(state)
    if bad:
        raise ConfigError(
            f"{ckpt} holds non-finite numbers (NaN or inf, arrays {bad[:5]}): it cannot be "
            "continued; restore it, or train again into a new --out."
        )
    check_metrics_for_resume(out / "metrics.csv", start, elapsed)
    best = out / "best.npz"
    if cfg.train.keep_best and best.exists():
        load_checkpoint(best, state)
