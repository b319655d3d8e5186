"""Per-example losses on a network's readout (the time-averaged output of its last layer).

Each loss is a small frozen object called as ``loss(readout, target) -> scalar`` for one
example; objectives average it over the batch.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

__all__ = [
    "AbstractLoss",
    "MSE",
    "OneHotMSE",
    "SoftmaxCrossEntropy",
    "MeanActivity",
    "accuracy",
    "all_losses",
]


class AbstractLoss(eqx.Module):
    @abc.abstractmethod
    def __call__(self, readout: Array, target: Array) -> Array:
        """Loss of one example: ``readout`` ``(n_out,)``, ``target`` as the loss expects."""


class MSE(AbstractLoss):
    """Mean squared error against a target vector of the readout's shape."""

    def __call__(self, readout: Array, target: Array) -> Array:
        return jnp.mean((readout - target) ** 2)


class OneHotMSE(AbstractLoss):
    """Mean squared error against ``high`` at the label's unit and ``low`` elsewhere (the
    study's MNIST loss)."""

    high: float = 1.0
    low: float = 0.0

    def __call__(self, readout: Array, target: Array) -> Array:
        n = readout.shape[-1]
        t = jnp.where(jax.nn.one_hot(target, n, dtype=bool), self.high, self.low)
        return jnp.mean((readout - t.astype(readout.dtype)) ** 2)


class SoftmaxCrossEntropy(AbstractLoss):
    """Cross-entropy of ``softmax(scale * readout)`` against an integer label; ``scale``
    turns mean firing activity (in [0, 1]) into logits."""

    scale: float = 1.0

    def __call__(self, readout: Array, target: Array) -> Array:
        logits = self.scale * readout
        return -jnp.take(jax.nn.log_softmax(logits), target)


class MeanActivity(AbstractLoss):
    """Mean readout, ignoring the target: the turn-off task (drive activity to zero)."""

    def __call__(self, readout: Array, target: Array) -> Array:
        return jnp.mean(readout)


def accuracy(readout: Array, labels: Array) -> Array:
    """Fraction of examples whose largest readout is at the label (``readout``: ``(B, n)``)."""
    return jnp.mean(jnp.argmax(readout, axis=-1) == labels)


def all_losses() -> list[tuple[AbstractLoss, str]]:
    """One instance of every classification/readout loss with the kind of target it takes
    (``"label"``: an int class; ``"vector"``: an array of the readout's shape; ``"none"``).
    Spike-train losses are listed in :func:`weakgrad.tasks.spike_trains.all_spike_losses`."""
    return [
        (MSE(), "vector"),
        (OneHotMSE(), "label"),
        (OneHotMSE(high=0.8, low=0.1), "label"),
        (SoftmaxCrossEntropy(), "label"),
        (SoftmaxCrossEntropy(scale=3.0), "label"),
        (MeanActivity(), "none"),
    ]
