"""Classification from input spike times on an event-simulated LIF network: what the Yin-Yang
(:mod:`weakgrad.tasks.yinyang`) and latency-coded MNIST (:mod:`weakgrad.tasks.latency_mnist`)
tasks share.

- :class:`AbstractSpikeEncoder`: features of a data set -> one spike time per input (ms;
  ``inf``: the input does not spike, as :meth:`~weakgrad.sim.event_lif.EventNetwork.simulate`
  takes it).
- :func:`lif_classifier_objective`: the ``n_in``-``hidden``-``n_classes`` LIF network, its
  initial weights, readout and loss (max-voltage or time-to-first-spike).
- :class:`AbstractSpikeTimeTask`: mini-batches (a fresh permutation every epoch), validation
  and test metrics in chunks of a fixed size (one compiled shape), lost-spike counting, and
  the test predictions handed to the task's figure.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Protocol

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.events import (
    EventObjective,
    FirstSpikeCrossEntropy,
    FirstSpikeTimes,
    MaxVoltage,
)
from weakgrad.objectives.losses import SoftmaxCrossEntropy, accuracy
from weakgrad.sim.event_lif import EventNetwork
from weakgrad.tasks.base import AbstractTask, batch_indices, check_batch_sizes

__all__ = [
    "AbstractSpikeEncoder",
    "AbstractSpikeTimeTask",
    "SpikeTimeSplits",
    "event_lif_options",
    "lif_classifier_objective",
    "spike_time_task_options",
]


class AbstractSpikeEncoder(eqx.Module):
    """Features ``(n, d)`` of a data set -> input spike times ``(n, n_in)`` in ms, at most one
    spike per input; ``inf`` where an input does not spike. Runs on the host (NumPy)."""

    @abc.abstractmethod
    def __call__(self, features: np.ndarray) -> np.ndarray: ...


class SpikeTimeSplits(Protocol):
    """What a spike-time task reads of its data: features and labels of three splits
    (:class:`~weakgrad.tasks.yinyang.YinYangSplits` and
    :class:`~weakgrad.tasks.mnist.MnistSplits` have them)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def lif_classifier_objective(
    times: np.ndarray, labels: np.ndarray, *, n_classes: int, hidden: int, key: Array,
    loss: str = "max-voltage", recurrent: bool = False, tau_mem: float = 20.0,
    tau_syn: float = 5.0, duration_ms: float = 30.0, dt_ms: float = 0.1,
    max_events: int = 512, init_mean: float = 2.0, init_std: float = 1.0,
    out_std: float = 1.0, out_mean: float = 0.0, readout_scale: float = 2.0,
    dtype: Any = jnp.float32,
) -> EventObjective:  # fmt: skip
    """An ``n_in``-``hidden``-``n_classes`` LIF network (``n_in = times.shape[1]``) on a batch
    of input spike ``times`` (ms). Hidden weights ``N(init_mean, init_std^2)``, output weights
    ``N(out_mean, out_std^2)`` (dimensionless, threshold units: one input spike of weight
    ``w`` peaks at ~0.16 ``w`` for tau_mem 20 ms, tau_syn 5 ms); recurrent hidden weights
    ``N(0, (0.5 / sqrt(hidden))^2)``. ``loss``: ``max-voltage`` (non-spiking outputs, softmax
    cross-entropy of ``readout_scale * max V``) or ``first-spike`` (spiking outputs,
    :class:`FirstSpikeCrossEntropy`). Time constants and ``duration_ms``, ``dt_ms`` (the
    surrogate twin's grid) in ms; ``readout_scale`` in logits per threshold unit."""
    from weakgrad import registry

    if loss not in registry.YINYANG_LOSSES:
        raise ValueError(f"loss = {loss!r}: choose one of {', '.join(registry.YINYANG_LOSSES)}.")
    spiking = loss == "first-spike"
    n_in = int(np.shape(times)[1])
    net = EventNetwork(
        sizes=(n_in, hidden, n_classes), recurrent=(recurrent, False), tau_mem=tau_mem,
        tau_syn=tau_syn, duration=duration_ms, max_events=max_events, spiking_output=spiking,
    )  # fmt: skip
    k1, k2, k3 = jax.random.split(key, 3)
    w1 = init_mean + init_std * jax.random.normal(k1, (n_in, hidden), dtype)
    w2 = out_std * jax.random.normal(k2, (hidden, n_classes), dtype)
    if out_mean:
        w2 = w2 + out_mean
    layer0 = {"weight": w1}
    if recurrent:
        layer0["recurrent"] = 0.5 / np.sqrt(hidden) * jax.random.normal(k3, (hidden, hidden), dtype)
    read = FirstSpikeTimes() if spiking else MaxVoltage()
    lossf = FirstSpikeCrossEntropy() if spiking else SoftmaxCrossEntropy(scale=readout_scale)
    return EventObjective(
        net, (layer0, {"weight": w2}), jnp.asarray(times, dtype), jnp.asarray(labels, jnp.int32),
        lossf, read, dt=dt_ms,
    )  # fmt: skip


def event_lif_options(t: Any) -> dict[str, Any]:
    """What an event-LIF ``[task]`` section (``yinyang``, ``latency-mnist``) sets of
    :func:`lif_classifier_objective`'s keywords, by the objective's names (ms dropped)."""
    return {
        "hidden": t.hidden, "loss": t.loss, "recurrent": t.recurrent, "tau_mem": t.tau_mem_ms,
        "tau_syn": t.tau_syn_ms, "duration_ms": t.duration_ms, "dt_ms": t.dt_ms,
        "max_events": t.max_events, "init_mean": t.init_mean, "init_std": t.init_std,
        "readout_scale": t.readout_scale,
    }  # fmt: skip


def spike_time_task_options(cfg: Any) -> dict[str, Any]:
    """:class:`AbstractSpikeTimeTask`'s keywords from a training config."""
    t, tr = cfg.task, cfg.train
    return {"batch_size": tr.batch_size, "eval_size": tr.eval_size, "seed": tr.seed,
            "train_size": t.train_size, "test_size": tr.test_size}  # fmt: skip


@eqx.filter_jit
def _metrics(obj: EventObjective, params: Any) -> tuple[Array, Array, Array, Array]:
    """(mean loss, accuracy, lost-spike examples, predicted classes) of one chunk."""
    readout, valid = obj.readout(params, jax.random.key(0))
    losses = jax.vmap(obj.loss)(readout, obj.targets)
    if isinstance(obj.read, FirstSpikeTimes):
        readout = -readout  # the earliest first spike wins
    return (
        jnp.mean(jnp.where(valid, losses, jnp.nan)),
        accuracy(readout, obj.targets),
        jnp.sum(~valid),
        jnp.argmax(readout, axis=-1),
    )


class AbstractSpikeTimeTask(AbstractTask):
    """Classification of encoded examples by an event-simulated LIF network
    (:class:`~weakgrad.objectives.events.EventObjective`): mini-batches of the first
    ``train_size`` training examples (a fresh permutation every epoch), validation loss and
    accuracy on the first ``eval_size`` validation examples, test scores on the first
    ``test_size`` test examples (None: the whole test split), all in chunks of ``chunk``
    examples. Examples whose spikes exceed the network's ``max_events`` are counted
    (``lost_spike_examples``); their loss is NaN.

    Subclasses set ``noun`` (what an example is called in messages, e.g. "points") and
    ``chunk``, and implement :meth:`source` and :meth:`prediction_figures`.
    """

    noun: ClassVar[str]
    chunk: ClassVar[int]

    def __init__(
        self, data: SpikeTimeSplits, objective: EventObjective, encoder: AbstractSpikeEncoder, *,
        batch_size: int, eval_size: int, seed: int = 0, train_size: int | None = None,
        test_size: int | None = None,
    ):  # fmt: skip
        if not isinstance(encoder, AbstractSpikeEncoder):
            raise TypeError(
                f"{type(self).__name__}: encoder must be an AbstractSpikeEncoder (e.g. "
                f"YinYangEncoder(t_early=2.0)), got {type(encoder).__name__}."
            )
        self.data, self.objective, self.encoder = data, objective, encoder
        self.n_train = train_size or len(data.x_train)
        check_batch_sizes(batch_size, self.n_train, eval_size, len(data.x_val), self.noun,
                          self.source(), test_size=test_size, n_test=len(data.x_test))  # fmt: skip
        self.x_test, self.y_test = data.x_test[:test_size], data.y_test[:test_size]
        self.batch, self.seed, self.eval_size = batch_size, seed, eval_size
        self.x_train = np.asarray(data.x_train[: self.n_train])
        self.y_train = np.asarray(data.y_train[: self.n_train])

    @abc.abstractmethod
    def source(self) -> str:
        """Where the data come from (the score's ``data`` entry)."""

    @abc.abstractmethod
    def prediction_figures(self, x: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
        """Figures of the test split ``x``, labels ``y`` and predicted classes ``pred``."""

    def encode(self, x: np.ndarray) -> Array:
        """Input spike times of examples ``x`` in the objective's dtype (ms)."""
        return jnp.asarray(self.encoder(x), self.objective.inputs.dtype)

    def initial_params(self) -> Any:
        return self.objective.params()

    def objective_at(self, step: int) -> EventObjective:
        idx = batch_indices(step, self.n_train, self.batch, self.seed)
        return self.objective.with_batch(
            self.encode(self.x_train[idx]), jnp.asarray(self.y_train[idx])
        )

    def evaluate(
        self, params: Any, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, float, int, np.ndarray]:
        """(loss, accuracy, lost-spike examples, predicted classes) of examples ``x``."""
        losses, accs, lost, ns, preds = [], [], 0, [], []
        for i in range(0, len(x), self.chunk):
            xs, ys = x[i : i + self.chunk], y[i : i + self.chunk]
            o = self.objective.with_batch(self.encode(xs), jnp.asarray(ys))
            loss, acc, bad, pred = _metrics(o, params)
            losses.append(float(loss))
            accs.append(float(acc))
            lost += int(bad)
            ns.append(len(xs))
            preds.append(np.asarray(pred))
        w = np.asarray(ns) / sum(ns)
        return float(np.dot(losses, w)), float(np.dot(accs, w)), lost, np.concatenate(preds)

    def validate(self, params: Any, key: Array) -> tuple[float, float]:
        n = self.eval_size
        loss, acc, _, _ = self.evaluate(params, self.data.x_val[:n], self.data.y_val[:n])
        return loss, acc

    def score(self, params: Any, key: Array) -> dict[str, Any]:
        loss, acc, lost, _ = self.evaluate(params, self.x_test, self.y_test)
        return {"test_loss": loss, "test_accuracy": acc, "test_size": len(self.x_test),
                "lost_spike_examples": lost, "data": self.source()}  # fmt: skip

    def figures(self, params: Any, key: Array) -> dict[str, Any]:
        x, y = self.x_test, self.y_test
        pred = self.evaluate(params, x, y)[3]
        return self.prediction_figures(x, np.asarray(y), pred)
