"""Where autodiff fails, model by model and method by method (issue 17; seeds 002, 003 and
000's TODO "look for cases where BNN/SNN fail with autodiff").

Every gradient family trains the same small network on Yin-Yang (Kriener et al. 2022) for
each model and timeframe, with an equal budget of forward evaluations (what each estimate
reports in ``EstimatorInfo.evals``: 1 for autodiff-based methods, ``samples`` (+1) for
the weak gradients): test accuracy at the end of the budget and at an equal wall time (the
shortest run of the model and timeframe), seconds per step, and the compiled step's
temporary memory (XLA's ``memory_analysis``; CPU has no peak-memory counter). A method that
does not apply to a model is a row marked ``n/a`` with the reason.

Models: time-stepped LIF, escape-noise LIF, binary perceptron and HH networks fed the four
features and a bias as constant currents (readout: mean output, i.e. spike rate for the
spiking units and graded release for HH), and the event-based LIF network of
:mod:`weakgrad.objectives.events` (spike-time inputs, exponential current synapses; the only
one EventProp differentiates; its surrogate twin runs the same network on a time grid).
Learning rates and perturbation sizes are one per model, not tuned per method (Adam; say so
in the report): this is a like-for-like comparison, not a leaderboard.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = ["CompareSettings", "GradientFamilies", "applies", "check_autodiff_fails"]

SECTION = "Where autodiff fails: every gradient family on one task (002, 003)"
MODELS = ("lif", "escape-noise-lif", "perceptron", "hh", "lif-event")
METHODS = (
    "autodiff", "clipped-autodiff", "surrogate-superspike", "surrogate-escape-matched",
    "eventprop", "regression", "smoothing", "node",
)  # fmt: skip
TIMEFRAMES = ("short", "long")


def applies(model: str, method: str, timeframe: str) -> str | None:
    """None if ``method`` trains ``model`` at ``timeframe``; else why not."""
    if model == "perceptron" and timeframe == "long":
        return "a perceptron has no dynamics: one step, no timeframe"
    if method == "eventprop" and model != "lif-event":
        return "EventProp needs the event-based LIF network"
    if method == "surrogate-superspike" and model == "hh":
        return "HH's output is graded release: no threshold spike to replace"
    if method == "surrogate-escape-matched" and model != "escape-noise-lif":
        return "matched to an escape-noise neuron's own slope"
    if method in ("autodiff", "clipped-autodiff") and model == "lif-event":
        return "the spike search is a while loop: no reverse-mode autodiff (EventProp is exact)"
    if method == "node" and model == "lif-event":
        return "node perturbation injects noise into a time-stepped simulation"
    return None


@dataclasses.dataclass(frozen=True)
class CompareSettings(ExperimentSettings):
    """Yin-Yang with ``train_size`` / ``test_size`` points; 5-``hidden``-3 networks; batches
    of ``batch``; ``budget`` forward evaluations per run; ``samples`` per weak-gradient
    estimate; timeframes ``short_ms`` and ``long_ms`` at ``dt_ms``; Adam; test accuracy
    measured ``evaluations`` times per run."""

    train_size: int = 1000
    test_size: int = 500
    hidden: int = 30
    batch: int = 32
    budget: int = 2000
    samples: int = 16
    short_ms: float = 10.0
    long_ms: float = 100.0
    dt_ms: float = 0.1
    evaluations: int = 5
    models: tuple[str, ...] = MODELS
    methods: tuple[str, ...] = METHODS
    timeframes: tuple[str, ...] = TIMEFRAMES


def check_autodiff_fails(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Plain autodiff on the spiking time-stepped models (LIF, perceptron) at chance (test
    accuracy within 5 points of the best constant guess) while some other method on the
    same model and timeframe is at least 10 points above chance: reproduced for every such
    cell; for some: partly."""
    cells = data["cells"]
    verdicts, parts = [], []
    for (model, timeframe), by_method in cells.items():
        if model not in ("lif", "perceptron") or "autodiff" not in by_method:
            continue
        chance = float(data["chance"])
        ad = by_method["autodiff"]
        best_name, best = max(
            ((m, a) for m, a in by_method.items() if m != "autodiff"), key=lambda t: t[1]
        )
        fails = ad <= chance + 0.05
        others = best >= chance + 0.10
        verdicts.append(fails and others)
        parts.append(
            f"{model} {timeframe}: autodiff {100 * ad:.0f}%, best {best_name} "
            f"{100 * best:.0f}% (chance {100 * chance:.0f}%)"
        )
    if not verdicts:
        return Verdict.NOT_REPRODUCED, "no spiking time-stepped model was run with autodiff"
    verdict = (
        Verdict.REPRODUCED if all(verdicts) else Verdict.PARTLY if any(verdicts)
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, "; ".join(parts)


AUTODIFF_FAILS = Claim(
    id="autodiff-fails-where-spikes-are-thresholds",
    section=SECTION,
    claim="Plain autodiff cannot train networks whose units spike by a threshold (the "
    "derivative of a spike is zero almost everywhere), while surrogate, exact and weak "
    "gradients can (000's TODO; 002; 003).",
    measures="Yin-Yang test accuracy after an equal budget of forward evaluations: plain "
    "autodiff within 5 points of chance and another method >= 10 points above, for the "
    "time-stepped LIF and perceptron at each timeframe: reproduced for all, partly for some.",
    check=check_autodiff_fails,
)


# ------------------------------------------------------------------ building the runs


def _model_objective(model: str, s: CompareSettings, timeframe: str, x, y, key):
    import jax.numpy as jnp

    from weakgrad.objectives.losses import SoftmaxCrossEntropy
    from weakgrad.objectives.network import NetworkObjective
    from weakgrad.sim.network import Network
    from weakgrad.sim.neurons import LIF, EscapeNoiseLIF, HodgkinHuxley, Perceptron
    from weakgrad.tasks.yinyang import yinyang_objective

    duration = s.short_ms if timeframe == "short" else s.long_ms
    steps = max(1, int(round(duration / s.dt_ms)))
    if model == "lif-event":
        return yinyang_objective(x, y, hidden=s.hidden, key=key, duration_ms=duration + 20.0,
                                 dt_ms=s.dt_ms)  # fmt: skip
    feats = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float32)
    # Per model: input-weight scale and bias putting the hidden layer near threshold, and
    # the logit scale making a few spikes (or ~1 ms of release) worth ~1 in the logits.
    if model == "hh":
        neuron, scale, bias, logit = HodgkinHuxley(), 40.0, 2.0, 2.0 * duration
    elif model == "perceptron":
        neuron, scale, bias, logit, steps = Perceptron(), 2.0, 0.0, 2.0, 1
    else:
        neuron = LIF() if model == "lif" else EscapeNoiseLIF()
        scale, bias, logit = 6.0, 1.0, steps / 4.0
    net = Network.feedforward((5, s.hidden, 3), neuron, key=key, scale=scale, bias=bias)
    return NetworkObjective(
        net, jnp.asarray(feats), jnp.asarray(y, jnp.int32), SoftmaxCrossEntropy(scale=logit),
        dt=s.dt_ms, steps=steps,
    )  # fmt: skip


def _estimator(method: str, model: str, s: CompareSettings):
    from weakgrad.estimators import (
        Autodiff,
        GaussianSmoothing,
        NodePerturbation,
        Regression,
        SurrogateGradient,
    )
    from weakgrad.estimators.eventprop import EventProp
    from weakgrad.sim.surrogates import EscapeNoiseMatched, SuperSpike

    # Perturbation sizes in each model's units: weights (sigma) and drive (node).
    w_sigma = {"hh": 1.0, "perceptron": 0.1}.get(model, 0.3)
    node_sigma = {"hh": 2.0, "perceptron": 0.1}.get(model, 0.3)
    return {
        "autodiff": lambda: Autodiff(),
        "clipped-autodiff": lambda: Autodiff(clip=1.0),
        "surrogate-superspike": lambda: SurrogateGradient(SuperSpike()),
        "surrogate-escape-matched": lambda: SurrogateGradient(EscapeNoiseMatched()),
        "eventprop": lambda: EventProp(),
        "regression": lambda: Regression(sigma=w_sigma, samples=s.samples),
        "smoothing": lambda: GaussianSmoothing(sigma=w_sigma, samples=s.samples),
        "node": lambda: NodePerturbation(sigma=node_sigma, samples=s.samples),
    }[method]()


def _inputs(obj, x: np.ndarray):
    """Yin-Yang features as the objective's inputs: spike times for the event-based
    network, the four features and a bias of 1 as constant currents otherwise."""
    import jax.numpy as jnp

    from weakgrad.objectives.events import EventObjective
    from weakgrad.tasks.yinyang import encode_spike_times

    if isinstance(obj, EventObjective):
        return jnp.asarray(encode_spike_times(x), obj.inputs.dtype)
    return jnp.asarray(np.concatenate([x, np.ones((len(x), 1))], 1), obj.inputs.dtype)


@functools.cache
def _readout():
    """One jitted readout for every evaluation (a lambda jitted per call compiled anew)."""
    import equinox as eqx

    return eqx.filter_jit(lambda o, p, k: o.readout(p, k))


def _accuracy(obj, params, x, y, key) -> float:
    import equinox as eqx
    import jax.numpy as jnp

    from weakgrad.objectives.events import FirstSpikeTimes

    targets = jnp.asarray(y, jnp.int32)
    test = eqx.tree_at(lambda o: (o.inputs, o.targets), obj, (_inputs(obj, x), targets))
    readout, valid = _readout()(test, params, key)
    readout = np.asarray(readout)
    if readout.ndim > 2:
        readout = readout.reshape(readout.shape[0], -1)
    if isinstance(obj.read, FirstSpikeTimes):
        readout = -readout  # the earliest first spike wins
    return float(np.mean((np.argmax(readout, 1) == y) & np.asarray(valid)))


def _train(obj, est, s: CompareSettings, data, lr: float, key) -> dict[str, Any]:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from weakgrad.training.optim import standard_promotion

    params = obj.params()
    opt = standard_promotion(optax.adam(lr))
    opt_state = opt.init(params)
    est_state = est.init(params)

    def step(p, o_state, e_state, o, k):
        g, e_state, info = est.estimate(o, p, e_state, key=k)
        u, o_state = opt.update(g, o_state, p)
        return optax.apply_updates(p, u), o_state, e_state, info.evals, info.loss

    jstep = eqx.filter_jit(step)
    x_tr, y_tr = data["x_train"], data["y_train"]
    feats = _inputs(obj, x_tr)
    rng = np.random.default_rng(0)

    def batch():
        idx = rng.choice(len(x_tr), s.batch, replace=False)
        return eqx.tree_at(lambda o: (o.inputs, o.targets), obj,
                           (feats[idx], jnp.asarray(y_tr[idx], jnp.int32)))  # fmt: skip

    k0, key = jax.random.split(key)
    b0 = batch()
    # Compile once, outside the clock; XLA's memory analysis of that compiled step.
    compiled = jstep.lower(params, opt_state, est_state, b0, k0).compile()
    try:
        mem = compiled.compiled.memory_analysis()
        temp_mb = float(mem.temp_size_in_bytes) / 2**20
    except (AttributeError, TypeError):
        temp_mb = None
    jstep = compiled
    out = jstep(params, opt_state, est_state, b0, k0)
    jax.block_until_ready(out[0])
    evals_per_step = int(out[3])
    steps = max(1, s.budget // max(evals_per_step, 1))
    marks = sorted({max(1, round(steps * (i + 1) / s.evaluations)) for i in range(s.evaluations)})
    history, elapsed, losses = [], 0.0, []
    for i, k in enumerate(jax.random.split(key, steps), start=1):
        t0 = time.perf_counter()
        params, opt_state, est_state, _, loss = jstep(params, opt_state, est_state, batch(), k)
        jax.block_until_ready(params)
        elapsed += time.perf_counter() - t0
        losses.append(float(loss))
        if i in marks:
            acc = _accuracy(obj, params, data["x_test"], data["y_test"], k0)
            history.append((i, i * evals_per_step, elapsed, acc))
    return {
        "steps": steps, "evals_per_step": evals_per_step, "seconds_per_step": elapsed / steps,
        "temp_mb": temp_mb, "history": history, "final_accuracy": history[-1][3],
        "final_loss": float(np.nanmean(losses[-max(1, steps // 10):])),
    }  # fmt: skip


# ------------------------------------------------------------------ result


@dataclasses.dataclass(frozen=True)
class _CompareResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: CompareSettings
    data: Mapping[str, Any]
    rows: list[dict[str, Any]]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json

        header = ["model", "timeframe", "method", "status", "test_accuracy_budget",
                  "test_accuracy_equal_time", "equal_time_s", "steps", "evals_per_step",
                  "seconds_per_step", "compiled_temp_mb", "reason"]  # fmt: skip
        write_csv(
            folder / "comparison.csv", header, ([r.get(h) for h in header] for r in self.rows)
        )
        write_json(folder / "histories.json", [
            {k: r[k] for k in ("model", "timeframe", "method", "history")}
            for r in self.rows if r["status"] == "ran"
        ])  # fmt: skip

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        s = self.settings
        cols = [(m, t) for m in s.models for t in s.timeframes]
        grid = np.full((len(s.methods), len(cols)), np.nan)
        na = np.zeros_like(grid, bool)
        for r in self.rows:
            i, j = s.methods.index(r["method"]), cols.index((r["model"], r["timeframe"]))
            if r["status"] == "ran":
                grid[i, j] = 100 * r["test_accuracy_budget"]
            else:
                na[i, j] = True
        fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 3, 0.5 * len(s.methods) + 2))
        im = ax.imshow(grid, cmap="viridis", vmin=100 * float(self.data["chance"]), vmax=100,
                       aspect="auto")  # fmt: skip
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                text = "n/a" if na[i, j] else ("" if np.isnan(grid[i, j]) else f"{grid[i, j]:.0f}")
                color = "0.5" if na[i, j] else ("k" if grid[i, j] > 75 else "w")
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        ax.set_xticks(range(len(cols)), [f"{m}\n{t}" for m, t in cols], fontsize=8,
                      rotation=35, ha="right")  # fmt: skip
        ax.set_yticks(range(len(s.methods)), s.methods, fontsize=8)
        fig.colorbar(im, ax=ax, label="Yin-Yang test accuracy (%) after the budget")
        ax.set_title(f"Every gradient family, {s.budget} forward evaluations each")
        fig.tight_layout()
        return {"comparison": fig}


class GradientFamilies(AbstractExperiment):
    """Every gradient method on every model and timeframe, same task, same budget."""

    name = "gradient-families"
    title = "Every gradient family on Yin-Yang: models x timeframes x methods"
    section = SECTION
    claims = (AUTODIFF_FAILS,)

    def quick(self) -> CompareSettings:
        return CompareSettings(train_size=600, test_size=300, hidden=20, batch=16,
                               budget=320, samples=8, short_ms=5.0, long_ms=50.0,
                               evaluations=3)  # fmt: skip

    def full(self) -> CompareSettings:
        return CompareSettings()

    def tiny(self) -> CompareSettings:
        return CompareSettings(train_size=40, test_size=20, hidden=4, batch=4, budget=8,
                               samples=4, short_ms=1.0, long_ms=2.0, evaluations=1,
                               models=("lif", "lif-event"), timeframes=("short",),
                               methods=("eventprop", "regression"))  # fmt: skip

    def run(self, settings, *, progress: Callable[[int], None] | None = None):
        import jax

        from weakgrad.tasks.yinyang import yinyang_splits

        s = settings
        splits = yinyang_splits(s.seed)
        data = {
            "x_train": splits.x_train[: s.train_size], "y_train": splits.y_train[: s.train_size],
            "x_test": splits.x_test[: s.test_size], "y_test": splits.y_test[: s.test_size],
        }  # fmt: skip
        chance = float(np.max(np.bincount(data["y_test"], minlength=3)) / len(data["y_test"]))
        lr = {"hh": 0.5, "perceptron": 0.02}
        rows, cells = [], {}
        key = jax.random.key(s.seed)
        for model in s.models:
            for timeframe in s.timeframes:
                cell_rows = []
                for method in s.methods:
                    reason = applies(model, method, timeframe)
                    row = {"model": model, "timeframe": timeframe, "method": method}
                    if reason is not None:
                        rows.append({**row, "status": "n/a", "reason": reason})
                        continue
                    obj = _model_objective(model, s, timeframe, data["x_train"][: s.batch],
                                           data["y_train"][: s.batch], key)  # fmt: skip
                    est = _estimator(method, model, s)
                    try:
                        r = _train(obj, est, s, data, lr.get(model, 0.05), key)
                    except Exception as e:  # a method that cannot run is a result too
                        rows.append(
                            {**row, "status": "failed", "reason": f"{type(e).__name__}: {e}"[:200]}
                        )
                        continue
                    row = {**row, "status": "ran", "reason": "", **r,
                           "test_accuracy_budget": r["final_accuracy"],
                           "compiled_temp_mb": r["temp_mb"]}  # fmt: skip
                    cell_rows.append(row)
                    rows.append(row)
                if cell_rows:
                    # Equal wall time: the shortest run of this model and timeframe; each
                    # method's last measured accuracy by then (None: none measured yet).
                    t_eq = min(r["history"][-1][2] for r in cell_rows)
                    for r in cell_rows:
                        before = [h[3] for h in r["history"] if h[2] <= t_eq + 1e-9]
                        r["test_accuracy_equal_time"] = before[-1] if before else None
                        r["equal_time_s"] = t_eq
                    cells[(model, timeframe)] = {
                        r["method"]: r["test_accuracy_budget"] for r in cell_rows
                    }
                if progress:
                    progress(1)
        return _CompareResult(self, s, {"cells": cells, "chance": chance}, rows)
