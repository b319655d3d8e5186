"""Latency-coded MNIST: each digit as at most one spike per pixel (time-to-first-spike coding),
classified by an event-simulated 784-``hidden``-10 LIF network
(:mod:`weakgrad.sim.event_lif`; trained exactly by EventProp, by surrogate gradients on its
grid twin, or by weak gradients).

Encoding: pixel intensity ``v`` in [0, 1] -> one input spike at ``t_early + (1 - v) (t_late
- t_early)`` ms, bright pixels early: the linear time-to-first-spike code of Comsa et al.
2020 (ICASSP, "Temporal coding in spiking neural networks with alpha synaptic function")
and Goeltz et al. 2021 (Nat. Mach. Intell. 3:823); Wunderlich & Pehle 2021 (Sci. Rep.
11:12829) trained EventProp on latency-coded MNIST. Pixels below ``threshold`` (default
0.2) do not spike (time ``inf``, which :meth:`~weakgrad.sim.event_lif.EventNetwork.simulate`
never reaches): our choice. It drops the background (81 % of the built-in digits' pixels
are 0, 3 % in (0, 0.2)), which would otherwise spike all together at ``t_late`` and cost
events without carrying much; 0.2 is also the cut-off of the latency code in Zenke's
SpyTorch tutorials (``current2firing_time``). A built-in digit then has 128 input spikes
on average (29-275), all in [t_early, t_early + (1 - threshold)(t_late - t_early)].

Data: the MNIST splits of :func:`weakgrad.tasks.mnist.load_mnist` (the built-in 5,000 digits
by default, IDX files from ``data_dir`` or ``WEAKGRAD_DATA``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, final

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.events import EventObjective
from weakgrad.tasks.mnist import load_mnist
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
    "LatencyEncoder",
    "LatencyMnistTask",
    "latency_mnist_objective",
    "latency_spike_times",
]


def latency_spike_times(
    images: np.ndarray, *, t_early: float = 2.0, t_late: float = 12.0, threshold: float = 0.2
) -> np.ndarray:
    """Pixel intensities ``(n, d)`` in [0, 1] -> input spike times ``(n, d)`` in ms:
    ``t_early + (1 - v) (t_late - t_early)`` where ``v >= threshold``, ``inf`` (no spike)
    below it."""
    if not (0 <= t_early < t_late < np.inf):
        raise ValueError(
            f"latency_spike_times needs 0 <= t_early < t_late (ms, finite), got "
            f"t_early={t_early}, t_late={t_late}."
        )
    if not 0 <= threshold <= 1:
        raise ValueError(
            f"latency_spike_times: threshold = {threshold} must be in [0, 1] (a pixel "
            "intensity; 0: every pixel spikes, 0.2: the background does not)."
        )
    v = np.asarray(images, float)
    if v.size and not (np.isfinite(v).all() and v.min() >= 0 and v.max() <= 1):
        raise ValueError(
            f"latency_spike_times: pixel intensities must lie in [0, 1], got "
            f"[{np.nanmin(v)}, {np.nanmax(v)}] ({int((~np.isfinite(v)).sum())} not finite); "
            "divide 8-bit images by 255."
        )
    return np.where(v >= threshold, t_early + (1 - v) * (t_late - t_early), np.inf)


class LatencyEncoder(AbstractSpikeEncoder):
    """Images ``(n, 784)`` -> one spike time per pixel (ms; ``inf``: no spike), by
    :func:`latency_spike_times` with these fields."""

    t_early: float = 2.0
    t_late: float = 12.0
    threshold: float = 0.2

    def __check_init__(self):
        latency_spike_times(np.zeros((0, 1)), t_early=self.t_early, t_late=self.t_late,
                            threshold=self.threshold)  # fmt: skip

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return latency_spike_times(
            features, t_early=self.t_early, t_late=self.t_late, threshold=self.threshold
        )


def latency_mnist_objective(
    x: np.ndarray, y: np.ndarray, *, hidden: int, key: Array,
    encoder: LatencyEncoder | None = None, loss: str = "max-voltage",
    recurrent: bool = False, tau_mem: float = 20.0, tau_syn: float = 5.0,
    duration_ms: float = 30.0, dt_ms: float = 0.1, max_events: int = 1024,
    init_mean: float = 0.06, init_std: float = 0.2, out_std: float = 0.4,
    out_mean: float | None = None, readout_scale: float = 2.0, dtype: Any = jnp.float32,
) -> EventObjective:  # fmt: skip
    """The 784-``hidden``-10 LIF network on latency-coded digits ``x`` ``(B, 784)`` in [0, 1]
    (:func:`~weakgrad.tasks.spike_time_task.lif_classifier_objective`). Hidden weights
    ``N(init_mean, init_std^2)``: the defaults make about 60 % of (digit, hidden neuron)
    pairs fire at initialisation, ~0.7 spikes per hidden neuron per built-in digit (a
    digit's ~128 input spikes; a single one of weight w peaks at ~0.16 w). Output weights
    ``N(out_mean, out_std^2)``; ``out_mean`` None: 0 for the max-voltage loss, ``4 /
    sqrt(hidden)`` for the first-spike loss (outputs must fire to carry a time gradient).
    ``encoder``: the latency code (None: :class:`LatencyEncoder` with its defaults)."""
    encoder = LatencyEncoder() if encoder is None else encoder
    if not isinstance(encoder, LatencyEncoder):
        raise TypeError(
            f"latency_mnist_objective: encoder must be a LatencyEncoder (e.g. "
            f"LatencyEncoder(t_early=2.0)), got {type(encoder).__name__}."
        )
    if out_mean is None:
        out_mean = 4.0 / np.sqrt(hidden) if loss == "first-spike" else 0.0
    return lif_classifier_objective(
        encoder(x), y, n_classes=10, hidden=hidden, key=key, loss=loss, recurrent=recurrent,
        tau_mem=tau_mem, tau_syn=tau_syn, duration_ms=duration_ms, dt_ms=dt_ms,
        max_events=max_events, init_mean=init_mean, init_std=init_std, out_std=out_std,
        out_mean=out_mean, readout_scale=readout_scale, dtype=dtype,
    )  # fmt: skip


@final
class LatencyMnistTask(AbstractSpikeTimeTask):
    """Latency-coded MNIST digits on an event-simulated 784-H-10 LIF network: mini-batches of
    the training digits (a fresh permutation every epoch), validation on the first
    ``eval_size`` validation digits, test scores on the test split (the built-in digits'
    1,000, or the 10,000 of the ``t10k`` IDX files; the first ``test_size``, if given), in
    chunks of 200 digits, with the spike times of ``encoder`` (a :class:`LatencyEncoder`)."""

    noun: ClassVar[str] = "digits"
    chunk: ClassVar[int] = 200

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> LatencyMnistTask:
        t, tr = cfg.task, cfg.train
        data = load_mnist(t.data_dir, seed=tr.seed)
        batch = min(tr.batch_size, t.train_size or len(data.x_train))  # too large: refused
        encoder = LatencyEncoder(
            t_early=t.t_early_ms, t_late=t.t_late_ms, threshold=t.pixel_threshold
        )
        objective = latency_mnist_objective(
            data.x_train[:batch], data.y_train[:batch], key=jax.random.key(tr.seed),
            encoder=encoder, out_std=t.out_std, out_mean=t.out_mean, **event_lif_options(t),
        )  # fmt: skip
        return cls(data, objective, encoder, **spike_time_task_options(cfg))

    def source(self) -> str:
        return f"{self.data.source} (latency-coded)"

    def prediction_figures(self, x: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(9.0, 4.2), layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[1.0, 1.1])
        # Inputs: the spike time of each pixel of four test digits (blank: no spike).
        axes = left.subplots(2, 2)
        times = self.encoder(x[:4])
        e = self.encoder
        lo, hi = e.t_early, e.t_early + (1 - e.threshold) * (e.t_late - e.t_early)  # the latest
        for ax, t, label, p in zip(axes.flat, times, y[:4], pred[:4], strict=False):
            im = ax.imshow(np.where(np.isfinite(t), t, np.nan).reshape(28, 28), cmap="viridis",
                           vmin=lo, vmax=hi)  # fmt: skip
            ax.set_title(f"digit {label}, predicted {p}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        left.colorbar(im, ax=axes, label="input spike time (ms; blank: none)", shrink=0.8)
        # Predictions: the confusion matrix of the whole test split.
        conf = np.zeros((10, 10), int)
        np.add.at(conf, (y, pred), 1)
        ax = right.subplots()
        im = ax.imshow(conf, cmap="Blues")
        for (i, j), c in np.ndenumerate(conf):
            if c:
                colour = "w" if c > conf.max() / 2 else "k"
                ax.text(j, i, str(c), ha="center", va="center", fontsize=6, color=colour)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
        ax.set_title(f"test: accuracy {np.mean(pred == y):.3f} ({len(y)} digits)", fontsize=9)
        right.colorbar(im, ax=ax, label="test digits (count)", shrink=0.8)
        return {"latency-mnist.png": fig}
