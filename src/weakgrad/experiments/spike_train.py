"""Study 001, "First Steps": replicate synthetic spike trains with a network of HH neurons fed
those trains, trained by regression sampling (S = 900, one layer per step, dt 0.1 ms, a
10 x 30 x 30 x 10 network), beside node perturbation and the surrogate gradient on the same
network with the same number of steps.

Every run goes through weakgrad's training loop (:func:`weakgrad.training.train` on configs
built in code through :mod:`weakgrad.config`: the ``spike-train`` task of
:mod:`weakgrad.tasks.spike_train_task`). What is measured, before and after training, on the
noise-free network:

- the van Rossum distance of the output trains to the target (the training loss, filter
  ``tau_ms``; cells averaged; 0 for identical trains, about ``sqrt(n / 2)`` for a silent cell
  whose target has ``n`` spikes);
- each output cell's spike count against its target cell's;
- the rasters of output and target.

The study leaves the duration and the synapse "TBD"; weakgrad uses 200 ms and graded
transmitter release (Destexhe et al. 1994) between HH layers. The full preset has the
study's sizes; the quick preset is reduced (fewer cells and hidden neurons, S = the largest
weight matrix as the study's rule says, fewer steps) and says so in ``size``, which goes into
every claim's measured text: a claim measured there is evidence at that size only.
Thresholds are those of issue 16 (van Rossum halved; every cell's count within 20%), fixed
before any run.

What was found on the quick network (issue 16, finding 6; seed 0, 200 steps unless said):

- The surrogate gradient of the task was identically zero: ``HodgkinHuxley.step`` emitted
  its spike without the surrogate derivative (fixed there: spikes carry it, graded or not).
  Even so it does not train here: on the output weights its gradient is nearly orthogonal
  to a regression slope with S = 600 (cosine 0.08, where two independent such slopes agree
  at 0.42; on the hidden weights neither agrees with anything: 0.005 and -0.006), and its
  norm grows layer by layer towards the input (53, 160, 340): BPTT through HH dynamics.
- At initialisation every HH layer bursts at ~45 Hz, not locked to its input (an input spike
  is a 10 uA/cm^2 pulse of one step, ~6 mV through the first weights), with a synchronous
  onset spike ~3 ms into the run (the 5 uA/cm^2 bias switched on from the zero-current
  rest); the output fires twice the target's count.
- Regression (S = 225, Adam): rate 0.2 beats 0.05 and 0.01 (van Rossum 1.58 / 1.88 / 1.98
  after 60 steps from 2.05); sigma 1.0 beats 0.5 (1.48 / 1.58 at 60); sigma 2 at rate 0.5
  silences cells; input gain 50 does not help (1.68 at 60). 200 steps: 2.05 -> ~1.2,
  below a silent output (1.57), with about half the target's spikes: at tau 10 ms a
  missing spike costs half a mistimed one. Training with tau 30 ms matches the counts
  better (23 spikes for 20; 3-4 of 5 cells within 20%) but reaches only 1.40 at tau 10 ms.

The full preset (seed 0, 1,140 s on 2 shared cores): regression 2.28 -> 1.02 (x0.45; silent
output 1.62), 29 output spikes for 44, 4 of 10 cells within 20% (replication: partly); node
perturbation 2.28 -> 1.51, the surrogate gradient 2.28 -> 2.43 (comparison: reproduced).
The quick preset: regression x0.60, 0 of 5 cells (not reproduced); node x0.78, surrogate
x0.99 (comparison: reproduced).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.errors import ConfigError
from weakgrad.experiments.base import (
    AbstractExperiment,
    AbstractResumableExperiment,
    ExperimentResult,
    ExperimentSettings,
    positive_float,
    positive_int,
)
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "SpikeTrainSettings",
    "SpikeTrainReplication",
    "METHODS",
    "spike_train_config",
    "check_regression_replicates",
    "check_weak_gradient_without_derivative",
    "counts_within",
]

SECTION = "First Steps (001)"
STUDY_SIZE = "the study's sizes (10 x 30 x 30 x 10, S = 900, 200 ms at dt 0.1 ms)"
METHODS = ("regression", "node", "surrogate")
COLOURS = {"regression": "tab:blue", "node": "tab:orange", "surrogate": "tab:green"}
LABELS = {
    "regression": "regression sampling",
    "node": "node perturbation",
    "surrogate": "surrogate gradient",
}

# Verdict bars (issue 16), fixed before any run.
HALVED = 0.5  # van Rossum distance after / before training
COUNT_TOLERANCE = 0.2  # |output count - target count| <= 0.2 * target count, per cell
TRAINS = 0.75  # after / before: the distance fell by at least a quarter ("it trains")
AS_WELL = 0.05  # regression's ratio at most the surrogate's plus this


# --- settings -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SpikeTrainSettings(ExperimentSettings):
    """The task: ``cells`` target trains (Poisson, ``rate_hz``, pairwise ``correlation``)
    over ``duration_ms`` at ``dt_ms``, fed in with ``input_gain`` uA/cm^2 per input spike to
    a ``cells`` x ``hidden`` x ``hidden`` x ``cells`` HH network; loss: van Rossum with
    filter ``tau_ms``. Every method trains ``steps`` steps with Adam.

    - regression: ``samples`` (S) weight perturbations of std ``sigma``, one layer per
      step, learning rate ``learning_rate``;
    - node perturbation: ``node_samples`` perturbed runs of one layer per step with a
      current noise of std ``node_sigma`` uA/cm^2 held for ``node_hold_ms``, learning rate
      ``node_learning_rate``;
    - surrogate gradient: SuperSpike of slope ``surrogate_beta`` (per mV) on the output
      spikes, BPTT through the graded hidden layers, learning rate
      ``surrogate_learning_rate``, global-norm clip ``surrogate_clip``.

    The loss is evaluated every ``eval_every`` steps; ``size`` says what was reduced from
    the study."""

    cells: int = 10
    hidden: int = 30
    duration_ms: float = 200.0
    dt_ms: float = 0.1
    rate_hz: float = 20.0
    correlation: float = 0.2
    input_gain: float = 10.0
    tau_ms: float = 10.0
    steps: int = 200
    samples: int = 900
    sigma: float = 1.0
    learning_rate: float = 0.2
    node_samples: int = 64
    node_sigma: float = 5.0
    node_hold_ms: float = 1.0
    node_learning_rate: float = 0.2
    surrogate_beta: float = 1.0
    surrogate_learning_rate: float = 0.05
    surrogate_clip: float = 10.0
    eval_every: int = 10
    size: str = STUDY_SIZE

    def __post_init__(self) -> None:
        for name in ("cells", "hidden", "steps", "samples", "node_samples", "eval_every"):
            positive_int(name, getattr(self, name))
        for name in (
            "duration_ms", "dt_ms", "rate_hz", "input_gain", "tau_ms", "sigma",
            "learning_rate", "node_sigma", "node_hold_ms", "node_learning_rate",
            "surrogate_beta", "surrogate_learning_rate", "surrogate_clip",
        ):  # fmt: skip
            positive_float(name, getattr(self, name))
        if self.samples < 2 or self.node_samples < 2:
            raise ConfigError(
                f"samples = {self.samples} and node_samples = {self.node_samples} must be at "
                "least 2 (a fit needs two perturbed runs)."
            )
        if not 0 <= self.correlation <= 1:
            raise ConfigError(f"correlation = {self.correlation!r} must be in [0, 1].")
        if self.dt_ms > self.duration_ms:
            raise ConfigError(
                f"dt_ms = {self.dt_ms} is longer than duration_ms = {self.duration_ms}."
            )
        if self.eval_every > self.steps:
            raise ConfigError(
                f"eval_every = {self.eval_every} exceeds steps = {self.steps}; evaluate at "
                "least once (eval_every <= steps)."
            )


def spike_train_config(s: SpikeTrainSettings, method: str) -> Any:
    """The :class:`~weakgrad.config.TrainConfig` of one run: ``method`` one of
    :data:`METHODS`."""
    from weakgrad.config import config_from_dict

    task = {
        "name": "spike-train", "cells": s.cells, "hidden": s.hidden, "rate_hz": s.rate_hz,
        "correlation": s.correlation, "input_gain": s.input_gain, "loss": "van-rossum",
        "tau_ms": s.tau_ms, "duration_ms": s.duration_ms, "dt_ms": s.dt_ms,
    }  # fmt: skip
    if method == "regression":
        est: dict[str, Any] = {"name": "regression", "samples": s.samples, "sigma": s.sigma,
                               "alternate": True}  # fmt: skip
        lr = s.learning_rate
    elif method == "node":
        est = {"name": "node", "samples": s.node_samples, "sigma": s.node_sigma,
               "alternate": True, "hold_ms": s.node_hold_ms}  # fmt: skip
        lr = s.node_learning_rate
    elif method == "surrogate":
        est = {"name": "surrogate", "surrogate": "superspike", "beta": s.surrogate_beta,
               "clip": s.surrogate_clip}  # fmt: skip
        lr = s.surrogate_learning_rate
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    # A killed `weakgrad reproduce` continues from the last evaluation (run_resumable).
    train = {"steps": s.steps, "eval_every": s.eval_every, "checkpoint_every": s.eval_every,
             "seed": s.seed}  # fmt: skip
    return config_from_dict(
        {"task": task, "estimator": est, "optimizer": {"name": "adam", "learning_rate": lr},
         "train": train}
    )  # fmt: skip


# --- one run ------------------------------------------------------------------------------


def _readout(task: Any, params: Any, key: Any) -> tuple[float, np.ndarray]:
    """The van Rossum distance and the ``(steps, cells)`` output trains of ``params``."""
    from weakgrad.tasks.spike_train_task import _loss, _output_spikes

    return float(_loss(task.objective, params, key)), np.asarray(
        _output_spikes(task.objective, params, key)
    )


def train_run(
    s: SpikeTrainSettings,
    method: str,
    folder: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train one method into ``folder`` (continued from its checkpoint when an earlier run
    there was killed); what the claims and figures read: the loss per step, the validation
    loss (van Rossum of the noise-free network) at each evaluation, before and after:
    distance, per-cell counts and trains."""
    from weakgrad.experiments.training import train_metrics

    result, m = train_metrics(spike_train_config(s, method), folder, progress=progress)
    task, key = result.task, result.key
    vr0, out0 = _readout(task, task.initial_params(), key)
    vr1, out1 = _readout(task, result.params, key)
    return {
        "loss": m.loss.tolist(),
        "eval_step": [0, *m.eval_step.tolist()],
        "val_loss": [vr0, *m.val_loss.tolist()],
        "vr_initial": vr0,
        "vr_final": vr1,
        "counts_initial": out0.sum(0).astype(int).tolist(),
        "counts_final": out1.sum(0).astype(int).tolist(),
        "seconds": float(result["seconds"]),
        "trains_initial": out0,
        "trains_final": out1,
        "target": np.asarray(task.target),
    }


# --- claim measures -----------------------------------------------------------------------


def counts_within(counts: Any, target: Any, tolerance: float = COUNT_TOLERANCE) -> np.ndarray:
    """Per cell: ``|count - target| <= tolerance * target`` (a silent target cell must stay
    silent)."""
    c, t = np.asarray(counts, np.float64), np.asarray(target, np.float64)
    return np.abs(c - t) <= tolerance * t + 1e-9


def _describe(name: str, run: Mapping[str, Any], target: Any) -> str:
    ok = counts_within(run["counts_final"], target)
    ratio = run["vr_final"] / run["vr_initial"]
    return (
        f"{LABELS[name]}: van Rossum {run['vr_initial']:.3g} -> {run['vr_final']:.3g} "
        f"(x{ratio:.2f}), {int(np.sum(run['counts_final']))} output spikes, "
        f"{int(ok.sum())}/{ok.size} cells' counts within 20%"
    )


def check_regression_replicates(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Regression after training: van Rossum distance at most half its value at
    initialisation AND every cell's spike count within 20% of its target cell's:
    reproduced; one of the two: partly; neither: not reproduced."""
    run, target = data["runs"]["regression"], data["target_counts"]
    halved = run["vr_final"] <= HALVED * run["vr_initial"]
    counts_ok = bool(np.all(counts_within(run["counts_final"], target)))
    measured = (
        f"{_describe('regression', run, target)}; target counts {list(target)} "
        f"({int(np.sum(target))} spikes), output counts {list(run['counts_final'])} "
        f"(before training {list(run['counts_initial'])}); a silent output would score "
        f"{data['vr_silent']:.3g}; after {data['steps']} steps at {data['size']} "
        f"({data['setting']})"
    )
    if halved and counts_ok:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if halved or counts_ok else Verdict.NOT_REPRODUCED), measured


def check_weak_gradient_without_derivative(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Van Rossum ratio r = after / before per method, same network and steps. Regression
    trains (r <= 0.75) and does at least as well as the surrogate gradient (r_regression <=
    r_surrogate + 0.05): reproduced; trains but worse than the surrogate: partly; does not
    train: not reproduced. Node perturbation is reported beside them."""
    runs, target = data["runs"], data["target_counts"]
    r = {m: runs[m]["vr_final"] / runs[m]["vr_initial"] for m in METHODS}
    measured = "; ".join(_describe(m, runs[m], target) for m in METHODS)
    measured += f"; {data['steps']} steps each at {data['size']} ({data['setting']})"
    if r["regression"] > TRAINS:
        return Verdict.NOT_REPRODUCED, measured
    if r["regression"] <= r["surrogate"] + AS_WELL:
        return Verdict.REPRODUCED, measured
    return Verdict.PARTLY, measured


REPLICATES = Claim(
    id="regression-replicates-spike-trains",
    section=SECTION,
    claim="Replicate a synthetically generated spike train of 10 cells with a 10 x 30 x 30 x "
    "10 HH network fed those trains, trained by regression sampling with S = 900, "
    "alternating layers, dt = 0.1 ms.",
    measures="After training: van Rossum distance to the target at most half of its value at "
    "initialisation, and every cell's spike count within 20% of its target cell's "
    "(issue 16): both reproduced; one: partly; neither: not reproduced.",
    check=check_regression_replicates,
)
WITHOUT_DERIVATIVE = Claim(
    id="weak-gradient-trains-without-derivative",
    section=SECTION,
    claim="Where the transfer functions have no clear notion of derivative, the weak gradient "
    "still trains without an approximate derivative for autodiff, the approach commonly "
    "used in the literature (001, Introduction); here regression against the surrogate "
    "gradient (and node perturbation) on the spike-train replication.",
    measures="van Rossum after / before training, same network and steps: regression at most "
    "0.75 and at most the surrogate gradient's + 0.05: reproduced; at most 0.75 but "
    "worse than the surrogate's: partly; above 0.75: not reproduced.",
    check=check_weak_gradient_without_derivative,
)


# --- result -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _SpikeTrainResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: SpikeTrainSettings
    data: Mapping[str, Any]
    trains: Mapping[str, np.ndarray]  # "target", "<method>_initial", "<method>_final"

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json, write_npz

        write_json(folder / "spike_train.json", self.data)
        write_npz(folder / "trains.npz", **self.trains)
        rows = []
        for m in METHODS:
            run = self.data["runs"][m]
            val = dict(zip(run["eval_step"], run["val_loss"], strict=True))
            for i, loss in enumerate(run["loss"]):
                rows.append([m, i + 1, loss, val.get(i + 1, "")])
        write_csv(folder / "curves.csv", ["method", "steps_done", "loss", "van_rossum"], rows)

    def figures(self) -> dict[str, Any]:
        return {
            "rasters": self._rasters(),
            "van_rossum": self._curves(),
            "counts": self._counts(),
        }

    def _rasters(self) -> Any:
        import matplotlib.pyplot as plt

        dt, target = self.settings.dt_ms, self.trains["target"]
        n = target.shape[1]
        fig, axes = plt.subplots(len(METHODS), 1, figsize=(10, 2.2 + 0.9 * n * len(METHODS) / 2),
                                 sharex=True, constrained_layout=True)  # fmt: skip
        for ax, m in zip(np.atleast_1d(axes), METHODS, strict=True):
            rows = (("target", target, "black"),
                    ("before training", self.trains[f"{m}_initial"], "0.6"),
                    ("after training", self.trains[f"{m}_final"], COLOURS[m]))  # fmt: skip
            for k, (label, trains, colour) in enumerate(rows):
                for j in range(n):
                    t = np.flatnonzero(trains[:, j]) * dt
                    ax.vlines(t, j + 0.05 + 0.3 * k, j + 0.32 + 0.3 * k, color=colour, lw=1,
                              label=label if j == 0 else None)  # fmt: skip
            ax.set_yticks(np.arange(n) + 0.5, [str(j) for j in range(n)])
            ax.set_ylim(0, n)
            ax.set_ylabel("cell")
            run = self.data["runs"][m]
            ax.set_title(f"{LABELS[m]}: van Rossum {run['vr_initial']:.2f} -> "
                         f"{run['vr_final']:.2f}", fontsize=9)  # fmt: skip
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        np.atleast_1d(axes)[-1].set_xlabel("time (ms)")
        np.atleast_1d(axes)[-1].set_xlim(0, target.shape[0] * dt)
        fig.suptitle(f"spike-train replication, target (black) vs output, {self.data['size']}",
                     fontsize=9)  # fmt: skip
        return fig

    def _curves(self) -> Any:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
        for m in METHODS:
            run = self.data["runs"][m]
            ax.plot(run["eval_step"], run["val_loss"], "o-", ms=3, color=COLOURS[m],
                    label=LABELS[m])  # fmt: skip
        reg0 = self.data["runs"]["regression"]["vr_initial"]
        ax.axhline(HALVED * reg0, color="tab:blue", ls="--", lw=1,
                   label="half the initial distance")  # fmt: skip
        ax.axhline(self.data["vr_silent"], color="0.5", ls=":", lw=1, label="silent output")
        ax.set_xlabel("training steps")
        ax.set_ylabel(f"van Rossum distance (tau {self.settings.tau_ms:g} ms)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
        ax.set_title(f"distance to the target, noise-free network; {self.data['size']}",
                     fontsize=9)  # fmt: skip
        return fig

    def _counts(self) -> Any:
        import matplotlib.pyplot as plt

        target = np.asarray(self.data["target_counts"])
        n = target.size
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * n + 2), 4), constrained_layout=True)
        width = 0.8 / (len(METHODS) + 1)
        x = np.arange(n)
        ax.bar(x - 0.4 + width / 2, target, width, color="black", label="target")
        for i, m in enumerate(METHODS):
            ax.bar(x - 0.4 + width * (i + 1.5), self.data["runs"][m]["counts_final"], width,
                   color=COLOURS[m], label=f"{LABELS[m]} (after)")  # fmt: skip
        ax.errorbar(x - 0.4 + width / 2, target, yerr=COUNT_TOLERANCE * target, fmt="none",
                    ecolor="0.4", capsize=3, label="target +/- 20%")  # fmt: skip
        ax.set_xticks(x, [str(j) for j in range(n)])
        ax.set_xlabel("cell")
        ax.set_ylabel("spikes per run")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_title(f"spike counts per cell after {self.data['steps']} steps", fontsize=9)
        return fig


class SpikeTrainReplication(AbstractResumableExperiment):
    """Spike-train replication by regression (S = 900, alternating layers), node
    perturbation and the surrogate gradient on the same HH network and step budget."""

    name = "spike-train-replication"
    title = "Spike-train replication with an HH network: regression vs node vs surrogate"
    section = SECTION
    claims = (REPLICATES, WITHOUT_DERIVATIVE)

    def quick(self) -> SpikeTrainSettings:
        """5 x 15 x 15 x 5, S = 225 (15 x 15), 200 steps, 200 ms at dt 0.1 ms: ~4 min on
        2 cores (230 s measured beside another job)."""
        return SpikeTrainSettings(
            cells=5, hidden=15, samples=225, steps=200, eval_every=20,
            size="quick: 5 x 15 x 15 x 5, S = 225 (15 x 15), 200 steps, 200 ms at dt 0.1 ms",
        )  # fmt: skip

    def full(self) -> SpikeTrainSettings:
        """The study's sizes, 200 steps: ~20 min on 2 cores (a regression step with
        S = 900 takes ~4 s; node perturbation and the surrogate ~1-3 min each)."""
        return SpikeTrainSettings()

    def tiny(self) -> SpikeTrainSettings:
        """Files and figures only: ~20 s on 2 cores, mostly compiling three training steps."""
        return SpikeTrainSettings(
            cells=2, hidden=3, duration_ms=10.0, rate_hz=200.0, samples=9, node_samples=4,
            steps=2, eval_every=1, size="tiny: 2 x 3 x 3 x 2, S = 9, 2 steps, 10 ms",
        )  # fmt: skip

    def run_resumable(
        self,
        settings: SpikeTrainSettings,
        scratch: Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> _SpikeTrainResult:
        s = settings
        runs: dict[str, dict[str, Any]] = {}
        trains: dict[str, np.ndarray] = {}
        for i, m in enumerate(METHODS):
            tick = None if progress is None else (lambda k, i=i: progress(i * s.steps + k))
            run = train_run(s, m, scratch / m, progress=tick)
            trains["target"] = run.pop("target")
            trains[f"{m}_initial"] = run.pop("trains_initial")
            trains[f"{m}_final"] = run.pop("trains_final")
            runs[m] = run
        target = trains["target"]
        data = {
            "runs": runs,
            "target_counts": target.sum(0).astype(int).tolist(),
            "vr_silent": _silent_distance(target, s),
            "steps": s.steps,
            "size": s.size,
            "setting": _setting(s),
        }
        return _SpikeTrainResult(self, s, data, trains)


def _setting(s: SpikeTrainSettings) -> str:
    """The training settings in words (every claim's measured text names them)."""
    return (
        f"Adam; regression S = {s.samples}, sigma {s.sigma:g}, rate {s.learning_rate:g}, one "
        f"layer per step; node perturbation {s.node_samples} runs, sigma {s.node_sigma:g} "
        f"uA/cm^2 held {s.node_hold_ms:g} ms, rate {s.node_learning_rate:g}; surrogate "
        f"SuperSpike beta {s.surrogate_beta:g}/mV, rate {s.surrogate_learning_rate:g}; input "
        f"gain {s.input_gain:g} uA/cm^2, van Rossum tau {s.tau_ms:g} ms"
    )


def _silent_distance(target: np.ndarray, s: SpikeTrainSettings) -> float:
    """The van Rossum distance of a silent output to ``target`` (a reference level)."""
    import jax.numpy as jnp

    from weakgrad.tasks.spike_trains import VanRossum

    t = jnp.asarray(target)
    return float(VanRossum(s.tau_ms, s.dt_ms)(jnp.zeros_like(t), t))
