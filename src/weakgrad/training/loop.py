"""The training loop: any estimator with any optax optimiser, mini-batches, validation,
a metrics file written as it goes, atomic checkpoints and exact resume.

``train(cfg, out)`` runs a :class:`~weakgrad.config.TrainConfig` into the folder ``out``:

- ``config.json``: the resolved configuration;
- ``metrics.csv``: one row per step (``step``, ``loss``, ``evals``, ``seconds``, and
  ``val_loss``, ``val_accuracy`` on evaluation steps), flushed after every row, so a crash
  loses at most the current step;
- ``checkpoint.npz``: parameters, estimator and optimiser state, step and elapsed time,
  written atomically every ``checkpoint_every`` steps and at the end;
- with ``train.ema_decay``, validation and test use a moving average of the parameters
  (kept in the checkpoint, so resume stays exact);
- with ``train.keep_best``, ``best.npz``: the state at the best evaluation so far (highest
  validation accuracy, then lowest validation loss), written atomically when it improves;
- at the end ``summary.json`` (``steps``, ``seconds``, ``test_accuracy``, ...) and figures.

``train(cfg, out, resume=True)`` continues from ``checkpoint.npz``: batches and keys are
functions of the step number, so a resumed run ends with the same parameters as an
uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
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
from jax import Array

from weakgrad.config import (
    ConfigError,
    EstimatorConfig,
    OptimizerConfig,
    TrainConfig,
    config_from_dict,
)
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
from weakgrad.objectives.losses import accuracy
from weakgrad.sim.network import SimulationError

__all__ = [
    "evaluate",
    "make_estimator",
    "make_optimizer",
    "scale_by_layer",
    "train",
    "METRIC_COLUMNS",
]

METRIC_COLUMNS = ("step", "loss", "evals", "seconds", "val_loss", "val_accuracy")


def _hold_steps(cfg: EstimatorConfig, dt_ms: float | None) -> int | None:
    """Node perturbation's ``hold_ms`` in steps (None: the whole run)."""
    if cfg.hold_ms == 0:
        return 1
    if math.isinf(cfg.hold_ms):
        return None
    if dt_ms is None:
        raise ValueError("estimator.hold_ms needs the task's dt_ms to count steps.")
    return max(1, int(round(cfg.hold_ms / dt_ms)))


def make_estimator(cfg: EstimatorConfig, dt_ms: float | None = None) -> AbstractEstimator:
    """The estimator a config names (``alternate`` cycles through layers where it applies);
    ``dt_ms`` converts node perturbation's ``hold_ms`` into steps."""
    s, sigma = cfg.samples, cfg.sigma
    if cfg.name == "autodiff":
        return Autodiff(clip=cfg.clip or None)
    if cfg.name == "node":
        hold = _hold_steps(cfg, dt_ms)
        samples = s + s % 2 if cfg.antithetic else max(s, 2)
        if cfg.layer_samples:
            samples = tuple(c + c % 2 if cfg.antithetic else c for c in cfg.layer_samples)
        est = NodePerturbation(
            sigma=cfg.layer_sigma or sigma, samples=samples, hold=hold, antithetic=cfg.antithetic
        )
        return Alternate(est) if cfg.alternate else est
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


def scale_by_layer(scales: tuple[float, ...]) -> optax.GradientTransformation:
    """Multiply the updates of layer ``i`` (the ``i``-th top-level child of the parameters,
    e.g. one dict per layer) by ``scales[i]``: per-layer learning rates."""

    def update(updates, state, params=None):
        del params
        if not isinstance(updates, (tuple, list)) or len(updates) != len(scales):
            n = len(updates) if isinstance(updates, (tuple, list)) else 1
            raise ValueError(
                f"optimizer.layer_scale has {len(scales)} entries but the parameters have "
                f"{n} layers; give one multiplier per layer."
            )
        pairs = zip(updates, scales, strict=True)
        out = [jax.tree.map(lambda u, c=c: c * u, layer) for layer, c in pairs]
        return type(updates)(out), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(cfg: OptimizerConfig, steps: int | None = None) -> optax.GradientTransformation:
    """The optimiser a config names, with per-layer update multipliers if it gives them;
    ``steps`` is the run's length for a decaying schedule."""
    lr: Any = cfg.learning_rate
    if cfg.schedule == "cosine":
        if steps is None:
            raise ValueError("optimizer.schedule = 'cosine' needs the number of steps.")
        lr = optax.cosine_decay_schedule(cfg.learning_rate, steps)
    if cfg.weight_decay:
        # Decoupled (AdamW-style) decay of the weights, not the biases (they set thresholds),
        # times the scheduled learning rate but not the layer scales.
        return optax.chain(
            optax.identity() if cfg.name == "sgd" else optax.scale_by_adam(),
            scale_by_layer(cfg.layer_scale) if cfg.layer_scale else optax.identity(),
            optax.add_decayed_weights(cfg.weight_decay, mask=_weights_only),
            optax.scale_by_learning_rate(lr),
        )
    base = optax.sgd(lr) if cfg.name == "sgd" else optax.adam(lr)
    return optax.chain(base, scale_by_layer(cfg.layer_scale)) if cfg.layer_scale else base


def _weights_only(params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "weight" in jax.tree_util.keystr(path), params
    )


def _save_checkpoint(path: Path, state: Any, step: int, seconds: float, **extra: float) -> None:
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, step=step, seconds=seconds, n_leaves=len(leaves), **extra, **arrays)
    os.replace(tmp, path)


def _rank(val_loss: float, val_acc: float) -> tuple[float, float]:
    """Sort key of an evaluation, larger is better: accuracy first (NaN where the task has
    none), then lower loss."""
    return (val_acc if np.isfinite(val_acc) else -np.inf, -val_loss)


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


def _best_in_metrics(path: Path) -> tuple[float, float]:
    best = (-np.inf, -np.inf)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["val_loss"]:
                acc = float(r["val_accuracy"]) if r["val_accuracy"] else float("nan")
                best = max(best, _rank(float(r["val_loss"]), acc))
    return best


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


class _MnistRun:
    """MNIST: mini-batches of digits, validation loss and accuracy, test accuracy."""

    def __init__(self, cfg: TrainConfig):
        from weakgrad.tasks.mnist import load_mnist, mnist_objective

        t, tr = cfg.task, cfg.train
        self.data = load_mnist(t.data_dir or None, seed=tr.seed)
        self.n_train = t.train_size or len(self.data.x_train)
        self.x, self.y = self.data.x_train[: self.n_train], self.data.y_train[: self.n_train]
        if tr.batch_size > self.n_train:
            raise ValueError(
                f"train.batch_size = {tr.batch_size} exceeds the {self.n_train} training digits."
            )
        self.batch, self.seed, self.shift = tr.batch_size, tr.seed, t.shift_px
        if tr.eval_size > len(self.data.x_val):
            raise ConfigError(
                f"train.eval_size = {tr.eval_size} exceeds the {len(self.data.x_val)} "
                f"validation digits of {self.data.source}; use at most {len(self.data.x_val)}."
            )
        self.objective = mnist_objective(
            t.model, self.x[: self.batch], self.y[: self.batch], key=jax.random.key(tr.seed),
            duration_ms=t.duration_ms, dt_ms=t.dt_ms, init=t.init,
            readout_scale=t.readout_scale or None, readout=t.readout,
        )  # fmt: skip
        self.x_val, self.y_val = self.data.x_val[: tr.eval_size], self.data.y_val[: tr.eval_size]

        # Autodiff trains the noise-free network (and ignores the noise settings).
        draws = 0 if cfg.estimator.name == "autodiff" else tr.eval_draws
        n_layers = len(self.objective.net.layers)
        e = cfg.estimator
        sigma = tuple(e.layer_sigma) if e.layer_sigma else (e.sigma,) * n_layers
        hold = _hold_steps(e, t.dt_ms) if draws else None

        @eqx.filter_jit
        def eval_fn(obj, params, key, smoothed: bool):
            if not smoothed:
                readout, valid = obj.readout(params, key)
                losses = jax.vmap(obj.loss)(readout, obj.targets)
                return jnp.mean(jnp.where(valid, losses, jnp.nan)), accuracy(readout, obj.targets)
            # The smoothed network: class probabilities averaged over the training noise.
            readouts, valid = obj.noisy_readouts(params, key, sigma, draws, hold)
            probs = jax.nn.softmax(obj.loss.scale * readouts, axis=-1).mean(0)
            losses = -jnp.log(jnp.take_along_axis(probs, obj.targets[:, None], 1)[:, 0])
            losses = jnp.where(valid.all(0), losses, jnp.nan)
            return jnp.mean(losses), accuracy(probs, obj.targets)

        self._eval, self.draws = eval_fn, draws

    def objective_at(self, step: int) -> Any:
        from weakgrad.tasks.mnist import shift_digits

        idx = _batch_indices(step, self.n_train, self.batch, self.seed)
        x = self.x[idx]
        if self.shift:
            # A function of the step, like the batch, so a resumed run sees the same digits.
            rng = np.random.default_rng([self.seed, step, 1])
            x = shift_digits(x, rng.integers(-self.shift, self.shift + 1, size=(len(x), 2)))
        return self.objective.with_batch(jnp.asarray(x), jnp.asarray(self.y[idx]))

    def _evaluate(self, params, xs, ys, key, smoothed=None, chunk=200) -> tuple[float, float]:
        smoothed = bool(self.draws) if smoothed is None else smoothed
        losses, accs, ns = [], [], []
        for i in range(0, len(xs), chunk):
            o = self.objective.with_batch(
                jnp.asarray(xs[i : i + chunk]), jnp.asarray(ys[i : i + chunk])
            )
            loss, acc = self._eval(o, params, key, smoothed)
            losses.append(float(loss))
            accs.append(float(acc))
            ns.append(len(xs[i : i + chunk]))
        w = np.asarray(ns) / sum(ns)
        return float(np.dot(losses, w)), float(np.dot(accs, w))

    def validate(self, params, key) -> tuple[float, float]:
        return self._evaluate(params, self.x_val, self.y_val, key)

    def finish(self, params, key, out: Path | None) -> dict[str, Any]:
        """Test metrics of ``params``; ``out``: where figures go (None: none)."""
        xt, yt = self.data.x_test, self.data.y_test
        loss, acc = self._evaluate(params, xt, yt, key)
        out = {"test_loss": loss, "test_accuracy": acc, "test_size": len(xt),
               "data": self.data.source}  # fmt: skip
        if self.draws:  # what the noise-free network scores, beside the smoothed one
            loss, acc = self._evaluate(params, xt, yt, key, smoothed=False)
            out.update({"eval_draws": self.draws, "noise_free_test_loss": loss,
                        "noise_free_test_accuracy": acc})  # fmt: skip
        return out


class _SpikeTrainRun:
    """Spike-train replication: one set of target trains, fed in and reproduced."""

    def __init__(self, cfg: TrainConfig):
        from weakgrad.sim.network import Network
        from weakgrad.sim.neurons import HodgkinHuxley
        from weakgrad.tasks.spike_trains import (
            CrossCorrelation,
            SpikeTrainObjective,
            VanRossum,
            read_nwb_units,
            synthetic_spike_trains,
        )

        t, tr = cfg.task, cfg.train
        k_data, k_net = jax.random.split(jax.random.key(tr.seed))
        if t.nwb_file:
            target = jnp.asarray(
                read_nwb_units(t.nwb_file, dt_ms=t.dt_ms, duration_ms=t.duration_ms)
            )
        else:
            target = synthetic_spike_trains(
                k_data, n_cells=t.cells, duration_ms=t.duration_ms, dt_ms=t.dt_ms,
                rates_hz=t.rate_hz, correlation=t.correlation,
            )  # fmt: skip
        n = target.shape[1]
        net = Network.feedforward(
            (n, t.hidden, t.hidden, n), HodgkinHuxley(), key=k_net, scale=20.0, bias=5.0
        )
        loss = VanRossum(t.tau_ms) if t.loss == "van-rossum" else CrossCorrelation(t.tau_ms)
        self.dt = t.dt_ms
        self.target = target
        self.objective = SpikeTrainObjective(net, t.input_gain * target, target, loss, dt=t.dt_ms)
        self._loss = eqx.filter_jit(lambda obj, params, key: obj(params, key))

    def objective_at(self, step: int) -> Any:
        return self.objective

    def validate(self, params, key) -> tuple[float, float]:
        return float(self._loss(self.objective, params, key)), float("nan")

    def finish(self, params, key, out: Path | None) -> dict[str, Any]:
        from weakgrad.plots import plot_raster, save_figure

        spikes, _ = self.objective.output(params, key)
        if out is not None:
            save_figure(
                plot_raster(np.asarray(self.target), np.asarray(spikes), self.dt,
                            title="spike-train replication: target vs network"),
                out / "raster.png",
            )  # fmt: skip
        return {
            "final_loss": float(self._loss(self.objective, params, key)),
            "target_spikes": int(np.sum(self.target)),
            "output_spikes": int(np.sum(spikes)),
        }


def _train_key(seed: int) -> Array:
    return jax.random.split(jax.random.key(seed))[1]


def _eval_key(seed: int) -> Array:
    return jax.random.fold_in(_train_key(seed), 2**31 - 1)


def _initial_state(params: Any, est: AbstractEstimator, opt: Any, ema: float) -> tuple:
    # With an average, the state carries its un-normalised sum: z <- ema z + (1 - ema) params.
    state = (params, est.init(params), opt.init(params))
    return state + ((jax.tree.map(jnp.zeros_like, params),) if ema else ())


def _evaluated(state: tuple, steps_done: int, ema: float) -> Any:
    """The parameters evaluated after ``steps_done`` steps: the bias-corrected average."""
    if not ema:
        return state[0]
    return jax.tree.map(lambda z: z / (1 - ema**steps_done), state[3])


def evaluate(
    out: str | os.PathLike, *, draws: int | None = None, best: bool = False
) -> dict[str, Any]:
    """Validation and test metrics of an MNIST run folder's ``checkpoint.npz`` (``best``:
    its ``best.npz``), as its ``config.json`` says, the parameter average included.
    ``draws`` overrides ``train.eval_draws`` (0: the noise-free network; N: class
    probabilities averaged over N draws of the training noise). Writes nothing, so a
    finished run can be scored again without retraining. Same numbers as the run itself
    reported for the same settings (same evaluation key)."""
    out = Path(out)
    path = out / ("best.npz" if best else "checkpoint.npz")
    for f in (out / "config.json", path):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} does not exist: evaluate needs a run folder written by weakgrad train"
                + (" with train.keep_best = true." if f.name == "best.npz" else ".")
            )
    data = json.loads((out / "config.json").read_text())
    if draws is not None:
        data.setdefault("train", {})["eval_draws"] = draws
    cfg = config_from_dict(data)
    if cfg.task.name != "mnist":
        raise ValueError(f"evaluate scores MNIST runs; {out} is a {cfg.task.name!r} run.")
    run = _MnistRun(cfg)
    est = make_estimator(cfg.estimator, cfg.task.dt_ms)
    opt = make_optimizer(cfg.optimizer, cfg.train.steps)
    template = _initial_state(run.objective.params(), est, opt, cfg.train.ema_decay)
    state, step, _ = _load_checkpoint(path, template)
    params = _evaluated(state, step, cfg.train.ema_decay)
    key = _eval_key(cfg.train.seed)
    val_loss, val_acc = run.validate(params, key)
    result = {"run": str(out), "checkpoint": path.name, "step": step,
              "eval_draws": cfg.train.eval_draws, "val_loss": val_loss,
              "val_accuracy": val_acc, "val_size": len(run.x_val)}  # fmt: skip
    result.update(run.finish(params, key, None))
    return result


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    progress: Callable[[int, dict], None] | None = None,
) -> dict[str, Any]:
    """Train as ``cfg`` says, writing into ``out``; returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.npz"
    metrics_path = out / "metrics.csv"
    if not resume and ckpt.exists():
        raise ValueError(
            f"{out} already holds a run (checkpoint.npz); pass --resume to continue it or "
            "choose another --out."
        )
    tr = cfg.train
    run = _MnistRun(cfg) if cfg.task.name == "mnist" else _SpikeTrainRun(cfg)
    k_train = _train_key(tr.seed)
    est = make_estimator(cfg.estimator, cfg.task.dt_ms)
    opt = make_optimizer(cfg.optimizer, cfg.train.steps)
    params = run.objective.params()
    for name, values in [
        ("optimizer.layer_scale", cfg.optimizer.layer_scale),
        ("estimator.layer_sigma", cfg.estimator.layer_sigma),
        ("estimator.layer_samples", cfg.estimator.layer_samples),
    ]:
        if values and len(values) != len(params):
            raise ConfigError(
                f"{name} = {list(values)} has {len(values)} entries; this network has "
                f"{len(params)} layers: give one per layer or []."
            )
    ema = tr.ema_decay
    state = _initial_state(params, est, opt, ema)
    start, elapsed = 0, 0.0
    best_path, best = out / "best.npz", (-np.inf, -np.inf)
    if resume and ckpt.exists():
        state, start, elapsed = _load_checkpoint(ckpt, state)
        _truncate_metrics(metrics_path, start)
    if tr.keep_best and resume and start > 0:
        # The bar is the best evaluation before the checkpoint. A best.npz from after it is
        # overwritten when the (deterministic) rerun reaches that evaluation again.
        best = _best_in_metrics(metrics_path)
    write_json(out / "config.json", cfg.to_dict())

    @eqx.filter_jit
    def step_fn(state, obj, key):
        params, est_state, opt_state = state[:3]
        g, est_state, info = est.estimate(obj, params, est_state, key=key)
        updates, opt_state = opt.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        new = (params, est_state, opt_state)
        if ema:
            new += (jax.tree.map(lambda z, p: ema * z + (1 - ema) * p, state[3], params),)
        return new, info.loss, info.evals

    def evaluated(state, steps_done: int):
        return _evaluated(state, steps_done, ema)

    k_eval = _eval_key(tr.seed)
    new_file = not metrics_path.exists() or start == 0
    with open(metrics_path, "w" if new_file else "a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow(METRIC_COLUMNS)
        t0 = time.perf_counter() - elapsed
        for step in range(start, tr.steps):
            state, loss, evals = step_fn(
                state, run.objective_at(step), jax.random.fold_in(k_train, step)
            )
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
                val_loss, val_acc = run.validate(evaluated(state, step + 1), k_eval)
                row["val_loss"] = val_loss
                row["val_accuracy"] = val_acc if np.isfinite(val_acc) else ""
                if tr.keep_best and _rank(val_loss, val_acc) > best:
                    best = _rank(val_loss, val_acc)
                    _save_checkpoint(best_path, state, step + 1, time.perf_counter() - t0,
                                     val_loss=val_loss, val_accuracy=val_acc)  # fmt: skip
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
    summary = {"task": cfg.task.name, "steps": tr.steps, "seconds": seconds}
    summary.update(run.finish(evaluated(state, tr.steps), k_eval, out))
    if tr.keep_best and best_path.exists():
        best_state, best_step, _ = _load_checkpoint(best_path, state)
        with np.load(best_path) as d:
            summary["best"] = {
                "step": best_step,
                "val_loss": float(d["val_loss"]),
                "val_accuracy": float(d["val_accuracy"]),
            }
        summary["best"].update(
            {
                k: v
                for k, v in run.finish(evaluated(best_state, best_step), k_eval, None).items()
                if k != "data"
            }
        )
    write_json(out / "summary.json", summary)
    _figures(metrics_path, out)
    return summary


def _figures(metrics_path: Path, out: Path) -> None:
    from weakgrad.plots import plot_training, save_figure

    with open(metrics_path, newline="") as f:
        rows = list(csv.DictReader(f))
    save_figure(plot_training(rows), out / "training.png")
