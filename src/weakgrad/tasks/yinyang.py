"""The Yin-Yang data set (Kriener, Goeltz, Petrovici et al. 2022, "The Yin-Yang dataset",
NICE '22) and its spike-time encoding, and the Yin-Yang training task.

Construction (as published): points ``(x, y)`` uniform in the square ``[0, 2 r_big]^2``,
kept inside the big circle of radius ``r_big`` centred at ``(r_big, r_big)``; each example
first draws its goal class uniformly from {yin, yang, dot} and candidates are drawn until
one of that class comes (rejection sampling: the classes are balanced although their areas
differ). Classes: *dot* within ``r_small`` of either eye centre ``(r_big/2, r_big)`` and
``(3 r_big/2, r_big)``; *yin* (label 0) the right eye, the left half-disc around the left
eye outside it, and the upper half outside the right half-disc; *yang* (label 1) the rest.
The features are ``(x, y, 1 - x, 1 - y)`` (``r_big = 0.5``: all in [0, 1]). Splits: 5,000
training, 1,000 validation, 1,000 test examples, each from its own seeded stream
(NumPy's PCG64 seeded with ``[seed, split]``; the published generator's numbers are not
reproduced). Reference accuracies of the paper: ANN 98.7 %, a shallow (linear) classifier
64.3 %.

Encoding (Goeltz et al. 2021; Wunderlich & Pehle 2021): each feature ``v`` in [0, 1] becomes
one input spike at ``t_early + v (t_late - t_early)`` ms, plus a bias spike at ``t_bias``:
five input spikes per example.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar, final

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.events import EventObjective
from weakgrad.tasks.spike_time_task import (
    AbstractSpikeEncoder,
    AbstractSpikeTimeTask,
    event_lif_options,
    lif_classifier_objective,
    spike_time_task_options,
)

if TYPE_CHECKING:
    from weakgrad.config import TrainConfig

__all__ = [
    "YINYANG_CLASSES",
    "YinYangSplits",
    "yinyang_class",
    "yinyang_points",
    "yinyang_splits",
    "encode_spike_times",
    "YinYangEncoder",
    "yinyang_objective",
    "YinYangTask",
]

YINYANG_CLASSES = ("yin", "yang", "dot")
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000}


def yinyang_class(x: np.ndarray, y: np.ndarray, r_big: float = 0.5, r_small: float = 0.1):
    """Class of points inside the big circle: 0 yin, 1 yang, 2 dot."""
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    dot = (d_right < r_small) | (d_left < r_small)
    yin = (
        (d_right <= r_small)
        | ((d_left > r_small) & (d_left <= 0.5 * r_big))
        | ((y > r_big) & (d_right > 0.5 * r_big))
    )
    return np.where(dot, 2, np.where(yin, 0, 1))


def yinyang_points(
    n: int, rng: np.random.Generator, r_big: float = 0.5, r_small: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` examples: features ``(n, 4)`` = ``(x, y, 1 - x, 1 - y)`` and labels ``(n,)``,
    by the published rejection sampling (a goal class per example, candidates until one of
    that class falls inside the big circle)."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"yinyang_points: n must be an int >= 1, got {n!r}.")
    if not 0 < r_small < r_big / 2:
        raise ValueError(
            f"yinyang_points: need 0 < r_small < r_big / 2, got r_small={r_small}, "
            f"r_big={r_big} (published: 0.1, 0.5)."
        )
    goals = rng.integers(0, 3, n)
    xy = np.empty((n, 2))
    todo = np.arange(n)
    while todo.size:
        cand = rng.uniform(0.0, 2 * r_big, (todo.size, 2))
        inside = np.hypot(cand[:, 0] - r_big, cand[:, 1] - r_big) <= r_big
        ok = inside & (yinyang_class(cand[:, 0], cand[:, 1], r_big, r_small) == goals[todo])
        xy[todo[ok]] = cand[ok]
        todo = todo[~ok]
    feats = np.concatenate([xy, 2 * r_big - xy], axis=1) / (2 * r_big)
    return feats, goals


@dataclasses.dataclass(frozen=True)
class YinYangSplits:
    """Features ``(n, 4)`` in [0, 1] and labels of the three splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def yinyang_splits(seed: int = 0, sizes: dict[str, int] | None = None) -> YinYangSplits:
    """The published split sizes (5,000 / 1,000 / 1,000), each split from its own stream."""
    sizes = {**SPLIT_SIZES, **(sizes or {})}
    out = []
    for i, name in enumerate(("train", "val", "test")):
        out += yinyang_points(sizes[name], np.random.default_rng([seed, i]))
    return YinYangSplits(*out)


def encode_spike_times(
    features: np.ndarray, *, t_early: float = 2.0, t_late: float = 12.0, t_bias: float = 0.0
) -> np.ndarray:
    """Features ``(n, 4)`` in [0, 1] -> input spike times ``(n, 5)`` in ms: ``t_early + v
    (t_late - t_early)`` and a bias spike at ``t_bias`` (the last input)."""
    if not (0 <= t_early < t_late and t_bias >= 0):
        raise ValueError(
            f"encode_spike_times needs 0 <= t_early < t_late and t_bias >= 0 (ms), got "
            f"t_early={t_early}, t_late={t_late}, t_bias={t_bias}."
        )
    f = np.asarray(features, float)
    times = t_early + f * (t_late - t_early)
    return np.concatenate([times, np.full((len(f), 1), t_bias)], axis=1)


class YinYangEncoder(AbstractSpikeEncoder):
    """Yin-Yang features ``(n, 4)`` -> five input spike times (ms): :func:`encode_spike_times`
    with these times."""

    t_early: float = 2.0
    t_late: float = 12.0
    t_bias: float = 0.0

    def __check_init__(self):
        encode_spike_times(np.zeros((1, 4)), t_early=self.t_early, t_late=self.t_late,
                           t_bias=self.t_bias)  # fmt: skip

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return encode_spike_times(
            features, t_early=self.t_early, t_late=self.t_late, t_bias=self.t_bias
        )


def yinyang_objective(
    x: np.ndarray, y: np.ndarray, *, hidden: int, key: Array,
    encoder: YinYangEncoder | None = None, loss: str = "max-voltage", recurrent: bool = False,
    tau_mem: float = 20.0, tau_syn: float = 5.0, duration_ms: float = 30.0, dt_ms: float = 0.1,
    max_events: int = 512, init_mean: float = 2.0, init_std: float = 1.0,
    readout_scale: float = 2.0, dtype: Any = jnp.float32,
) -> EventObjective:  # fmt: skip
    """The 5-``hidden``-3 LIF network on encoded Yin-Yang points
    (:func:`~weakgrad.tasks.spike_time_task.lif_classifier_objective`). Hidden weights
    ``N(init_mean, init_std^2)`` (the five input spikes must be able to make a hidden neuron
    fire: one input spike of weight w peaks at ~0.16 w for the default time constants);
    output weights ``N(0, 1/hidden)`` times ``init_std * 4``, shifted up by ``4 /
    sqrt(hidden)`` for the first-spike loss (outputs that fire at all carry a time gradient).
    ``loss``: ``max-voltage`` (non-spiking outputs, softmax cross-entropy of ``readout_scale
    * max V``) or ``first-spike`` (spiking outputs,
    :class:`~weakgrad.objectives.events.FirstSpikeCrossEntropy`). ``encoder``: the spike
    times of the features (None: :class:`YinYangEncoder` with its defaults)."""
    encoder = YinYangEncoder() if encoder is None else encoder
    if not isinstance(encoder, YinYangEncoder):
        raise TypeError(
            f"yinyang_objective: encoder must be a YinYangEncoder (e.g. "
            f"YinYangEncoder(t_early=2.0, t_late=12.0)), got {type(encoder).__name__}."
        )
    return lif_classifier_objective(
        encoder(x), y, n_classes=3, hidden=hidden, key=key, loss=loss, recurrent=recurrent,
        tau_mem=tau_mem, tau_syn=tau_syn, duration_ms=duration_ms, dt_ms=dt_ms,
        max_events=max_events, init_mean=init_mean, init_std=init_std,
        out_std=4.0 * init_std / np.sqrt(hidden),
        out_mean=4.0 / np.sqrt(hidden) if loss == "first-spike" else 0.0,
        readout_scale=readout_scale, dtype=dtype,
    )  # fmt: skip


@final
class YinYangTask(AbstractSpikeTimeTask):
    """Yin-Yang on an event-simulated 5-H-3 LIF network: mini-batches of the 5,000 training
    points (a fresh permutation every epoch), validation loss and accuracy on the first
    ``eval_size`` validation points, test scores on the 1,000 test points (the first
    ``test_size``, if given), with the spike times of ``encoder`` (a :class:`YinYangEncoder`).
    Examples whose spikes exceed the network's ``max_events`` are counted
    (``lost_spike_examples``)."""

    noun: ClassVar[str] = "points"
    chunk: ClassVar[int] = 500

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> YinYangTask:
        t, tr = cfg.task, cfg.train
        data = yinyang_splits(tr.seed)
        batch = min(tr.batch_size, t.train_size or len(data.x_train))
        encoder = YinYangEncoder(t_early=t.t_early_ms, t_late=t.t_late_ms, t_bias=t.t_bias_ms)
        objective = yinyang_objective(
            data.x_train[:batch], data.y_train[:batch], key=jax.random.key(tr.seed),
            encoder=encoder, **event_lif_options(t),
        )  # fmt: skip
        return cls(data, objective, encoder, **spike_time_task_options(cfg))

    def source(self) -> str:
        return "yinyang (generated)"

    def prediction_figures(self, x: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.5, 4.2))
        colours = ("tab:blue", "tab:orange", "tab:green")
        for c, name in enumerate(YINYANG_CLASSES):
            m = pred == c
            ax.scatter(x[m, 0], x[m, 1], s=6, color=colours[c], label=f"predicted {name}")
        wrong = pred != y
        ax.scatter(x[wrong, 0], x[wrong, 1], s=18, facecolors="none", edgecolors="k",
                   linewidths=0.6, label="wrong")  # fmt: skip
        ax.set_xlabel("x (feature, dimensionless)")
        ax.set_ylabel("y (feature, dimensionless)")
        ax.set_aspect("equal")
        ax.set_title(f"Yin-Yang test: accuracy {1 - wrong.mean():.3f}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        fig.tight_layout()
        return {"yinyang.png": fig}
