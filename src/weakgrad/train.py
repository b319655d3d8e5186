"""The training loop: any estimator with any optax optimiser, mini-batches, validation,
a metrics file written as it goes, atomic checkpoints and exact resume.

``train(cfg, out)`` runs a :class:`~weakgrad.config.TrainConfig` into the folder ``out``:

- ``config.json``: the resolved configuration;
- ``metrics.csv``: one row per step (``step``, ``loss``, ``evals``, ``seconds``, and
  ``val_loss``, ``val_accuracy`` on evaluation steps), flushed after every row, so a crash
  loses at most the current step;
- ``checkpoint.npz``: parameters, estimator and optimiser state, step and elapsed time,
  written atomically every ``checkpoint_every`` steps and at the end;
- at the end ``summary.json`` (``steps``, ``seconds``, ``test_accuracy``, ...) and figures.

``train(cfg, out, resume=True)`` continues from ``checkpoint.npz``: batches and keys are
functions of the step number, so a resumed run ends with the same parameters as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from weakgrad.config import EstimatorConfig, OptimizerConfig, TrainConfig
from weakgrad.estimators import (
    SPSA,
    AbstractEstimator,
    Alternate,
    Autodiff,
    GaussianSmoothing,
    NodePerturbation,
    Regression,
    StepwiseNodePerturbation,
)
from weakgrad.io import write_json
from weakgrad.losses import accuracy
from weakgrad.network import SimulationError

__all__ = ["make_estimator", "make_optimizer", "train", "METRIC_COLUMNS"]

METRIC_COLUMNS = ("step", "loss", "evals", "seconds", "val_loss", "val_accuracy")


def make_estimator(cfg: EstimatorConfig) -> AbstractEstimator:
    """The estimator a config names (``alternate`` cycles through layers where it applies)."""
    s, sigma = cfg.samples, cfg.sigma
    if cfg.name == "autodiff":
        return Autodiff(clip=cfg.clip or None)
    if cfg.name == "node":
        return NodePerturbation(sigma=sigma, samples=max(s, 2))
    if cfg.name == "node-stepwise":
        return StepwiseNodePerturbation(sigma=sigma, samples=s)
    if cfg.name == "regression":
        samples = s + s % 2 if cfg.antithetic else max(s, 2)
        est = Regression(sigma=sigma, samples=samples, antithetic=cfg.antithetic)
    elif cfg.name == "smoothing":
        est = GaussianSmoothing(sigma=sigma, samples=max(2, s + s % 2))
    else:  # spsa
        est = SPSA(step=sigma, samples=max(1, s // 2))
    return Alternate(est) if cfg.alternate else est


def make_optimizer(cfg: OptimizerConfig) -> optax.GradientTransformation:
    if cfg.name == "sgd":
        return optax.sgd(cfg.learning_rate)
    return optax.adam(cfg.learning_rate)


def _save_checkpoint(path: Path, state: Any, step: int, seconds: float) -> None:
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, step=step, seconds=seconds, n_leaves=len(leaves), **arrays)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, template: Any) -> tuple[Any, int, float]:
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


def _batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    """The batch of ``step``: a fresh permutation of the training set every epoch."""
    per_epoch = max(n // batch, 1)
    epoch, i = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[i * batch : (i + 1) * batch]


def _truncate_metrics(path: Path, before_step: int) -> None:
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f)]
    keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < before_step]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)
    os.replace(tmp, path)


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    progress: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train as ``cfg`` says, writing into ``out``; returns the summary."""
    from weakgrad.tasks.mnist import load_mnist, mnist_objective

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.npz"
    metrics_path = out / "metrics.csv"
    if not resume and ckpt.exists():
        raise ValueError(
            f"{out} already holds a run (checkpoint.npz); pass --resume to continue it or "
            "choose another --out."
        )
    t, tr = cfg.task, cfg.train
    data = load_mnist(t.data_dir or None, seed=tr.seed)
    n_train = t.train_size or len(data.x_train)
    x_train, y_train = data.x_train[:n_train], data.y_train[:n_train]
    if tr.batch_size > n_train:
        raise ValueError(
            f"train.batch_size = {tr.batch_size} exceeds the {n_train} training digits."
        )
    k_net, k_train = jax.random.split(jax.random.key(tr.seed))
    obj = mnist_objective(
        t.model, x_train[: tr.batch_size], y_train[: tr.batch_size], key=k_net,
        duration_ms=t.duration_ms, dt_ms=t.dt_ms, init=t.init,
    )  # fmt: skip
    est = make_estimator(cfg.estimator)
    opt = make_optimizer(cfg.optimizer)
    params = obj.params()
    state = (params, est.init(params), opt.init(params))
    start, elapsed = 0, 0.0
    if resume and ckpt.exists():
        state, start, elapsed = _load_checkpoint(ckpt, state)
        _truncate_metrics(metrics_path, start)
    write_json(out / "config.json", cfg.to_dict())

    @eqx.filter_jit
    def step_fn(state, xb, yb, key):
        params, est_state, opt_state = state
        g, est_state, info = est.estimate(obj.with_batch(xb, yb), params, est_state, key=key)
        updates, opt_state = opt.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), est_state, opt_state), info.loss, info.evals

    @eqx.filter_jit
    def eval_fn(params, xs, ys, key):
        o = obj.with_batch(xs, ys)
        readout, valid = o.readout(params, key)
        losses = jax.vmap(o.loss)(readout, o.targets)
        return jnp.mean(jnp.where(valid, losses, jnp.nan)), accuracy(readout, o.targets)

    def evaluate(params, xs, ys, key, chunk=200):
        losses, accs, ns = [], [], []
        for i in range(0, len(xs), chunk):
            l, a = eval_fn(
                params, jnp.asarray(xs[i : i + chunk]), jnp.asarray(ys[i : i + chunk]), key
            )
            losses.append(float(l))
            accs.append(float(a))
            ns.append(len(xs[i : i + chunk]))
        w = np.asarray(ns) / sum(ns)
        return float(np.dot(losses, w)), float(np.dot(accs, w))

    x_val, y_val = data.x_val[: tr.eval_size], data.y_val[: tr.eval_size]
    k_eval = jax.random.fold_in(k_train, 2**31 - 1)
    new_file = not metrics_path.exists() or start == 0
    with open(metrics_path, "w" if new_file else "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(METRIC_COLUMNS)
        t0 = time.perf_counter() - elapsed
        for step in range(start, tr.steps):
            idx = _batch_indices(step, n_train, tr.batch_size, tr.seed)
            state, loss, evals = step_fn(
                state, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]),
                jax.random.fold_in(k_train, step),
            )  # fmt: skip
            loss = float(loss)
            if not np.isfinite(loss):
                raise SimulationError(
                    f"step {step}: the loss is not finite (a simulation blew up or the "
                    "parameters diverged); lower optimizer.learning_rate or estimator.sigma, "
                    "or task.dt_ms. The last checkpoint is kept."
                )
            row = {
                "step": step,
                "loss": loss,
                "evals": int(evals),
                "val_loss": "",
                "val_accuracy": "",
            }
            last = step + 1 == tr.steps
            if (step + 1) % tr.eval_every == 0 or last:
                row["val_loss"], row["val_accuracy"] = evaluate(state[0], x_val, y_val, k_eval)
            row["seconds"] = time.perf_counter() - t0
            writer.writerow(
                [
                    row[c] if not isinstance(row[c], float) else f"{row[c]:.9g}"
                    for c in METRIC_COLUMNS
                ]
            )
            f.flush()
            os.fsync(f.fileno())
            if (step + 1) % tr.checkpoint_every == 0 or last:
                _save_checkpoint(ckpt, state, step + 1, row["seconds"])
            if progress is not None:
                progress(step, row)
    seconds = time.perf_counter() - t0
    test_loss, test_acc = evaluate(state[0], data.x_test, data.y_test, k_eval)
    summary = {
        "steps": tr.steps,
        "seconds": seconds,
        "test_loss": test_loss,
        "test_accuracy": test_acc,
        "test_size": len(data.x_test),
        "data": data.source,
    }
    write_json(out / "summary.json", summary)
    _figures(metrics_path, out)
    return summary


def _figures(metrics_path: Path, out: Path) -> None:
    from weakgrad.plots import plot_training, save_figure

    with open(metrics_path, newline="") as f:
        rows = list(csv.DictReader(f))
    save_figure(plot_training(rows), out / "training.png")
