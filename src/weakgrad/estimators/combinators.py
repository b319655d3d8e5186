"""Combinators: restrict an estimator to some parameters, or alternate between groups.

The study found that perturbing all layers at once skews the estimate of each layer, while
perturbing one layer at a time works (000, "Real Application: MNIST"): :class:`Alternate`
does that, one parameter group per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

from weakgrad.estimators._base import AbstractEstimator, AbstractSamplingEstimator, EstimatorInfo
from weakgrad.objectives.base import AbstractObjective

__all__ = ["Masked", "LayerOnly", "Alternate", "layer_groups"]


def _mask_indices(mask: Any, params: Any) -> np.ndarray:
    try:
        flat_mask = np.concatenate(
            [
                np.broadcast_to(np.asarray(m, bool), np.shape(p)).reshape(-1)
                for m, p in zip(
                    jax.tree_util.tree_leaves(mask),
                    jax.tree_util.tree_leaves(params),
                    strict=True,
                )
            ]
        )
    except ValueError as e:
        raise ValueError(
            f"Masked.mask must have the structure of params (one bool or bool array per leaf): {e}"
        ) from None
    idx = np.flatnonzero(flat_mask)
    if idx.size == 0:
        raise ValueError("Masked.mask selects no parameter; set at least one entry True.")
    return idx


def _freeze(mask: Any) -> tuple:
    """A hashable copy of a mask pytree (static fields must hash under jit)."""
    leaves, treedef = jax.tree_util.tree_flatten(mask)
    arrays = [np.asarray(m, bool) for m in leaves]
    return treedef, tuple((a.shape, np.packbits(a.reshape(-1)).tobytes()) for a in arrays)


def _thaw(frozen: tuple) -> Any:
    treedef, leaves = frozen
    arrays = [
        np.unpackbits(np.frombuffer(b, np.uint8), count=int(np.prod(shape)))
        .astype(bool)
        .reshape(shape)
        for shape, b in leaves
    ]
    return jax.tree_util.tree_unflatten(treedef, arrays)


class Masked(AbstractEstimator):
    """Estimate only the parameters where ``mask`` is True; the gradient is 0 elsewhere.

    Sampling estimators perturb only the selected coordinates (so their cost and variance
    depend on the selection's size); others compute the full gradient and zero the rest.

    Attributes:
        estimator: the estimator to restrict.
        mask: a pytree of bools (or bool arrays) with the structure of ``params``.
    """

    estimator: AbstractEstimator
    mask: Any = eqx.field(static=True)

    def __init__(self, estimator: AbstractEstimator, mask: Any):
        self.estimator = estimator
        self.mask = _freeze(mask)

    def _pytree_mask(self) -> Any:
        return _thaw(self.mask)

    def _indices(self, params: Any) -> np.ndarray:
        return _mask_indices(self._pytree_mask(), params)

    def init(self, params: Any) -> Any:
        theta = ravel_pytree(params)[0]
        if isinstance(self.estimator, AbstractSamplingEstimator):
            return self.estimator.init_flat(theta[self._indices(params)])
        return self.estimator.init(params)

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        idx = self._indices(params)
        theta, unravel = ravel_pytree(params)
        if not isinstance(self.estimator, AbstractSamplingEstimator):
            grads, state, info = self.estimator.estimate(objective, params, state, key=key)
            keep = unravel(jnp.zeros_like(theta).at[idx].set(1))
            grads = jax.tree.map(lambda g, k: g * k, grads, keep)
            stderr = (
                None if info.stderr is None else jax.tree.map(lambda s, k: s * k, info.stderr, keep)
            )
            return grads, state, EstimatorInfo(info.evals, info.loss, stderr)

        def f(sub: Array, keys: Array) -> Array:
            thetas = jnp.broadcast_to(theta, (sub.shape[0], theta.shape[0])).at[:, idx].set(sub)
            return objective.population(jax.vmap(unravel)(thetas), keys)

        g_sub, state, info = self.estimator.estimate_flat(f, theta[idx], state, key=key)
        g = jnp.zeros_like(theta).at[idx].set(g_sub.astype(theta.dtype))
        stderr = None
        if info.stderr is not None:
            stderr = unravel(jnp.zeros_like(theta).at[idx].set(info.stderr.astype(theta.dtype)))
        return unravel(g), state, EstimatorInfo(info.evals, info.loss, stderr)


def layer_groups(params: Any) -> list[Any]:
    """One mask per top-level child of ``params`` (per layer for a tuple of layers)."""
    children, treedef = jax.tree_util.tree_flatten(params, is_leaf=lambda x: x is not params)
    if len(children) < 2:
        raise ValueError(
            "layer_groups needs params with at least two top-level children (e.g. a tuple "
            "of layers); pass the groups to Alternate explicitly."
        )
    groups = []
    for i in range(len(children)):
        marked = [jax.tree.map(lambda _, on=(j == i): on, c) for j, c in enumerate(children)]
        groups.append(jax.tree_util.tree_unflatten(treedef, marked))
    return groups


def _simulates_lower_once(objective: AbstractObjective, layer: int) -> bool:
    """Whether perturbing only ``layer`` of ``objective`` can run the layers below once per
    example (:meth:`~weakgrad.objectives.network.NetworkObjective.tail`) and give the same
    losses: a time-stepped network objective, ``layer > 0``, no noise below ``layer`` (every
    perturbed run would draw the same), and a loss that reads only the network's output (an
    activity penalty counts the lower layers' spikes too)."""
    from weakgrad.objectives.activity import penalises_activity
    from weakgrad.objectives.network import NetworkObjective

    return (
        isinstance(objective, NetworkObjective)
        and 0 < layer < len(objective.net.layers)
        and not any(la.neuron.stochastic for la in objective.net.layers[:layer])
        and not penalises_activity(objective)
    )


class LayerOnly(AbstractEstimator):
    """A sampling estimator on the parameters of one layer (top-level child of ``params``)
    alone; the gradient is 0 elsewhere. What :class:`Alternate` uses per layer.

    The same estimate as :class:`Masked` with that layer's mask. On a
    :class:`~weakgrad.objectives.network.NetworkObjective` whose layers below ``layer`` are
    deterministic, those are simulated once per example instead of once per perturbed run
    (:meth:`~weakgrad.objectives.network.NetworkObjective.tail`): for the output layer of a
    784-100-10 Hodgkin-Huxley network, 10 neurons simulated per run instead of 110. The
    losses are the same up to float rounding (a separately compiled program).

    Attributes:
        estimator: the sampling estimator.
        layer: index of the layer (top-level child of ``params``) to perturb.
    """

    estimator: AbstractSamplingEstimator
    layer: int = eqx.field(static=True)

    def __check_init__(self):
        if not isinstance(self.estimator, AbstractSamplingEstimator):
            raise TypeError(
                "LayerOnly.estimator must be a sampling estimator (e.g. Regression), got "
                f"{type(self.estimator).__name__}; use Masked for the others."
            )
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0:
            raise ValueError(f"LayerOnly.layer must be an int >= 0, got {self.layer!r}.")

    def _layers(self, params: Any) -> tuple[list[Any], Any]:
        """The top-level children of ``params`` (its layers) and their treedef."""
        children, treedef = jax.tree_util.tree_flatten(params, is_leaf=lambda x: x is not params)
        if len(children) < 2:
            raise ValueError(
                "LayerOnly needs params with at least two layers (top-level children, e.g. "
                "a network's tuple of layers); for one, use the estimator itself."
            )
        if self.layer >= len(children):
            raise ValueError(
                f"LayerOnly.layer = {self.layer}, but params have {len(children)} layers."
            )
        return children, treedef

    def _masked(self, params: Any) -> Masked:
        self._layers(params)
        return Masked(self.estimator, layer_groups(params)[self.layer])

    def init(self, params: Any) -> Any:
        return self._masked(params).init(params)

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        if not _simulates_lower_once(objective, self.layer):
            return self._masked(params).estimate(objective, params, state, key=key)
        children, treedef = self._layers(params)
        theta, unravel = ravel_pytree(children[self.layer])
        upper = tuple(children[self.layer + 1 :])
        # The layers below, simulated once per example (deterministic: any key will do).
        tail = objective.tail(params, key, self.layer)  # type: ignore[attr-defined]

        def f(thetas: Array, keys: Array) -> Array:
            n = thetas.shape[0]
            rest = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), upper)
            return tail.population((jax.vmap(unravel)(thetas), *rest), keys)

        g, state, info = self.estimator.estimate_flat(f, theta, state, key=key)

        def spread(flat: Array) -> Any:
            out = [jax.tree.map(jnp.zeros_like, c) for c in children]
            out[self.layer] = unravel(flat.astype(theta.dtype))
            return jax.tree_util.tree_unflatten(treedef, out)

        stderr = None if info.stderr is None else spread(info.stderr)
        return spread(g), state, EstimatorInfo(info.evals, info.loss, stderr)


class AlternateState(eqx.Module):
    step: Array
    inner: tuple[Any, ...]


class Alternate(AbstractEstimator):
    """Perturb one parameter group per estimate, cycling through the groups.

    Attributes:
        estimator: the estimator applied to the current group.
        groups: masks (pytrees of bools with the structure of params); None: one group per
            top-level child of params (:func:`layer_groups`), i.e. per layer.
    """

    estimator: AbstractEstimator
    groups: tuple[Any, ...] | None = eqx.field(static=True, default=None)

    def __init__(self, estimator: AbstractEstimator, groups: Sequence[Any] | None = None):
        self.estimator = estimator
        if groups is not None:
            if len(groups) == 0:
                raise ValueError("Alternate.groups must hold at least one mask.")
            groups = tuple(_freeze(g) for g in groups)
        self.groups = groups

    def _masked(self, params: Any) -> list[AbstractEstimator]:
        if self.groups is None:
            est = self.estimator
            sampling = isinstance(est, AbstractSamplingEstimator)
            return [
                est.for_layer(i) or (LayerOnly(est, i) if sampling else Masked(est, g))
                for i, g in enumerate(layer_groups(params))
            ]
        return [Masked(self.estimator, _thaw(g)) for g in self.groups]

    def init(self, params: Any) -> AlternateState:
        inner = tuple(m.init(params) for m in self._masked(params))
        return AlternateState(jnp.asarray(0, jnp.int32), inner)

    def estimate(
        self, objective: AbstractObjective, params: Any, state: AlternateState, *, key: Array
    ) -> tuple[Any, AlternateState, EstimatorInfo]:
        masked = self._masked(params)

        def branch(i, fill):
            def run():
                grads, inner_i, info = masked[i].estimate(
                    objective, params, state.inner[i], key=key
                )
                if fill and info.stderr is None:
                    nan = jax.tree.map(lambda g: jnp.full_like(g, jnp.nan), grads)
                    info = EstimatorInfo(info.evals, info.loss, nan)
                inner = tuple(inner_i if j == i else s for j, s in enumerate(state.inner))
                return grads, inner, info

            return run

        which = state.step % len(masked)
        try:
            grads, inner, info = jax.lax.switch(
                which, [branch(i, False) for i in range(len(masked))]
            )
        except TypeError as e:
            # Groups whose estimates do and do not carry a standard error (regression gives
            # one only when S > the group's size): the missing ones become NaN ("unknown").
            # Traced again only then; the common case traces each branch once.
            if "stderr" not in str(e):
                raise
            grads, inner, info = jax.lax.switch(
                which, [branch(i, True) for i in range(len(masked))]
            )
        return grads, AlternateState(state.step + 1, inner), info
