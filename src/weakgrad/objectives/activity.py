"""An activity (energy) penalty that composes with any network objective's loss.

Study 003 ("Trading off performance and energy in spiking networks") joins a performance
loss and an activity loss: ``L = L_task + weight * A``, ``A`` the network's mean activity.
Here ``A`` is the mean over every neuron of every layer of

- ``target="counts"``: the number of spikes the neuron emits in one inference (one example's
  run of ``steps`` steps), in spikes per neuron per inference;
- ``target="rate"``: the same divided by ``steps``: spikes per neuron per time step (the
  fraction of steps with a spike, in [0, 1] for spiking neurons; dt-free, so it also means
  something for rate units, whose "spike" is their activation).

A neuron's spike is :class:`~weakgrad.sim.neurons._base.NeuronOutput`'s ``spike``: 0/1 for
spiking models, carrying the surrogate derivative where the neuron has one (so surrogate
gradients see the penalty), the activation itself for rate units (so autodiff does).

Two pieces, because the loss of :class:`~weakgrad.objectives.network.AbstractNetworkObjective`
sees only its readout: :class:`ActivityReadout` wraps the objective's readout and adds the
spike counts of all layers (it asks the simulation for ``Record(spikes=True)``: ``steps x n``
values per layer and example); :class:`ActivityPenalty` wraps its loss.
:func:`with_activity_penalty` puts both on an objective (``NetworkObjective`` or
``TailObjective``; a tail sees only its own layers' spikes). Every estimator that only
evaluates the objective (the weak gradients) or differentiates it (autodiff, surrogate
gradients) then works unchanged; node perturbation refuses it (it needs a ``MeanOutput``
readout). An event-simulated ``EventObjective`` is refused: its readouts are its own, and its
grid twin counts spikes as integers, without the surrogate derivative.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.objectives.losses import AbstractLoss
from weakgrad.objectives.network import AbstractNetworkObjective, AbstractReadout
from weakgrad.sim.network import Record

__all__ = [
    "ActivityValue",
    "ActivityReadout",
    "ActivityPenalty",
    "with_activity_penalty",
    "without_activity_penalty",
    "activity_of",
]

TARGETS = ("counts", "rate")


class ActivityValue(eqx.Module):
    """What :class:`ActivityReadout` gives the loss (leading batch axes where batched).

    Attributes:
        readout: the wrapped readout's value.
        counts: ``(..., N)`` spikes of each neuron of every layer (layer after layer) over
            the run, as floats (a sum of the per-step spikes, surrogate derivative included).
        steps: the number of time steps of the run.
    """

    readout: Any
    counts: Array
    steps: int = eqx.field(static=True)

    def activity(self, target: str) -> Array:
        """Mean over neurons: spikes per neuron per inference (``counts``) or per step
        (``rate``); ``(...)``."""
        a = jnp.mean(self.counts, axis=-1)
        return a if target == "counts" else a / self.steps


class ActivityReadout(AbstractReadout):
    """The wrapped readout, plus every layer's spike counts (:class:`ActivityValue`).

    Attributes:
        inner: the readout the task loss sees.
        record: what the simulation keeps: ``inner``'s record and the spikes per step.
    """

    inner: AbstractReadout
    record: Record = eqx.field(static=True)

    def __init__(self, inner: AbstractReadout):
        if not isinstance(inner, AbstractReadout):
            raise TypeError(
                f"ActivityReadout.inner must be a readout (e.g. MeanOutput()), got {inner!r}."
            )
        if isinstance(inner, ActivityReadout):
            raise TypeError(
                "ActivityReadout.inner is already an ActivityReadout: penalise activity once "
                "(one ActivityPenalty with the summed weight)."
            )
        self.inner = inner
        self.record = dataclasses.replace(inner.record, spikes=True)

    def __call__(self, trace: Any) -> ActivityValue:
        spikes = trace.spikes
        counts = jnp.concatenate([s.sum(axis=-2) for s in spikes], axis=-1)
        return ActivityValue(self.inner(trace), counts, int(np.shape(spikes[0])[-2]))


class ActivityPenalty(AbstractLoss):
    """``loss(readout, target) + weight * A`` with ``A`` the mean activity (module docstring);
    called on an :class:`ActivityValue` (give the objective an :class:`ActivityReadout`, or
    use :func:`with_activity_penalty`). ``weight`` is in loss units per (spike per neuron per
    inference) for ``counts``, per (spike per neuron per step) for ``rate``.

    Attributes:
        loss: the task loss on the wrapped readout.
        weight: the penalty's weight (>= 0; 0 gives ``loss`` exactly).
        target: ``"counts"`` or ``"rate"``.
    """

    loss: AbstractLoss
    weight: float
    target: Literal["counts", "rate"] = eqx.field(static=True, default="counts")

    def __check_init__(self):
        if not isinstance(self.loss, AbstractLoss):
            raise TypeError(
                f"ActivityPenalty.loss must be a weakgrad loss (e.g. OneHotMSE()), got "
                f"{self.loss!r}."
            )
        w = self.weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not (np.isfinite(w) and w >= 0):
            raise ValueError(
                f"ActivityPenalty.weight must be a finite number >= 0 (0: no penalty), got {w!r}."
            )
        if self.target not in TARGETS:
            raise ValueError(
                f"ActivityPenalty.target must be one of {TARGETS} (spikes per neuron per "
                f"inference, or per time step), got {self.target!r}."
            )

    def __call__(self, readout: ActivityValue, target: Array) -> Array:
        if not isinstance(readout, ActivityValue):
            raise TypeError(
                "ActivityPenalty needs the objective's readout wrapped in ActivityReadout (use "
                f"with_activity_penalty(objective, weight)); got {type(readout).__name__}."
            )
        base = self.loss(readout.readout, target)
        # No Python branch on the weight: it may be traced (a sweep under one jit). With
        # weight 0, ``base + 0 * A`` is ``base`` exactly (A >= 0 and finite).
        return base + jnp.asarray(self.weight, base.dtype) * readout.activity(self.target)


def penalises_activity(objective: Any) -> bool:
    """Whether ``objective``'s loss counts the spikes of every layer (its readout is an
    :class:`ActivityReadout`), so a tail of its upper layers would leave out the lower ones'
    (estimators that reuse the lower layers' simulation check this)."""
    return isinstance(objective, AbstractNetworkObjective) and isinstance(
        objective.read, ActivityReadout
    )


def with_activity_penalty(
    objective: AbstractNetworkObjective, weight: float, target: str = "counts"
) -> AbstractNetworkObjective:
    """``objective`` with its loss ``L`` replaced by ``L + weight * A`` (:class:`ActivityPenalty`)
    and its readout wrapped to deliver the spike counts (:class:`ActivityReadout`)."""
    if not isinstance(objective, AbstractNetworkObjective):
        raise TypeError(
            "with_activity_penalty needs a network objective (NetworkObjective or "
            f"TailObjective), got {type(objective).__name__}."
        )
    from weakgrad.objectives.events import EventObjective

    if isinstance(objective, EventObjective):
        raise TypeError(
            "with_activity_penalty: an EventObjective keeps its own readouts and its grid twin "
            "counts spikes as integers (no surrogate derivative); build the network on the "
            "time-stepped simulator (NetworkObjective) to penalise its activity."
        )
    penalty = ActivityPenalty(objective.loss, weight, target)  # type: ignore[arg-type]
    return dataclasses.replace(objective, read=ActivityReadout(objective.read), loss=penalty)


def without_activity_penalty(objective: AbstractNetworkObjective) -> AbstractNetworkObjective:
    """The objective :func:`with_activity_penalty` was given (unchanged if it has none)."""
    if not isinstance(objective.read, ActivityReadout):
        return objective
    loss = objective.loss
    base = loss.loss if isinstance(loss, ActivityPenalty) else loss
    return dataclasses.replace(objective, read=objective.read.inner, loss=base)


def activity_of(
    objective: AbstractNetworkObjective, params: Any, key: Array, target: str = "counts"
) -> Array:
    """Per-example mean activity ``(B,)`` of ``objective``'s batch at ``params`` (spikes per
    neuron per inference, or per step for ``"rate"``), penalised or not."""
    if target not in TARGETS:
        raise ValueError(f"activity_of: target must be one of {TARGETS}, got {target!r}.")
    base = without_activity_penalty(objective)
    probe = dataclasses.replace(base, read=ActivityReadout(base.read))
    value, _ = probe.readout(params, key)
    return value.activity(target)
