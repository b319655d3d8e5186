"""Node perturbation: perturb a layer's pre-activations instead of its weights.

Both variants of study 000 ("Optimizing Methods to Make Them VIABLE"):
:class:`NodePerturbation` lets the perturbed networks run freely with the injected noise;
:class:`StepwiseNodePerturbation` probes every step from the unperturbed state.


For ``alpha_i = x_{i-1} W_i + b_i`` the chain rule gives ``dL/dW_i = x_{i-1}^T dL/dalpha_i``,
so noise on the ``n_out`` pre-activations replaces noise on the ``n_in * n_out`` weights
(study 000, "Optimizing Methods to Make Them VIABLE"). In a network simulated over time the
noise ``xi(t) ~ N(0, sigma^2)`` is injected at every step and the neurons run freely with
it (the study's second variant; Fiete & Seung, PRL 2006). To first order in ``sigma``,

``dL/dW_i ~ E[(L(xi) - b) sum_t x_{i-1}(t)^T xi(t)] / sigma^2``.

Implementation: ``samples`` perturbed simulations of each example give the losses; the
baseline ``b`` is the mean over samples (with the factor ``S / (S - 1)`` that makes it
unbiased). One further unperturbed simulation per example regenerates every sample's noise
from its counter-based key and accumulates ``sum_t x(t)^T sum_s c_s xi_s(t)``: memory is
one weight matrix per example, not per sample, and the input ``x(t)`` is taken from the
unperturbed run (exact for feed-forward layers, first-order for recurrent weights).
Noise is independent per example, and each example's loss is used on its own, so the
variance does not grow with the batch.

White noise spreads the perturbation over ``n_out * steps`` independent directions, and the
estimator's variance grows with their number: over a 100 ms run at 0.1 ms that is 1,000
times the directions of the layer itself. ``hold`` holds each draw for that many steps
(``None``: the whole run), which leaves ``n_out * steps / hold`` directions. The eligibility
is then ``sum_t x(t)^T xi(t) / hold``; it estimates ``sum_blocks xbar^T sum_{t in block}
dL/dalpha(t)``, which is the gradient exactly where the layer's input is constant over a
block (the first layer of a network driven by a constant input, for any ``hold``) and to
first order in the input's variation within a block otherwise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.estimators._base import (
    AbstractEstimator,
    EstimatorInfo,
    _check_pairs,
    _check_positive,
)
from weakgrad.estimators.perturbations import (
    LayerNoise,
    LayerProbe,
    NodeNoise,
    StepProbes,
    layer_noise_words,
)
from weakgrad.objectives.activity import penalises_activity
from weakgrad.objectives.base import AbstractObjective
from weakgrad.objectives.network import AbstractNetworkObjective, MeanOutput
from weakgrad.parallel import shard_population

__all__ = ["NodePerturbation", "StepwiseNodePerturbation", "noisy_readouts"]


def _layers(objective: Any, layers: tuple[int, ...] | None, owner: str) -> tuple[int, ...]:
    if not isinstance(objective, AbstractNetworkObjective):
        raise TypeError(
            f"{owner} perturbs a network's pre-activations and needs a "
            f"NetworkObjective, got {type(objective).__name__}; use a weight-space "
            "estimator (Regression, GaussianSmoothing) for other objectives."
        )
    n_layers = len(objective.net.layers)
    chosen = tuple(range(n_layers)) if layers is None else layers
    if not chosen or any(not -n_layers <= i < n_layers for i in chosen):
        raise ValueError(
            f"{owner}.layers={layers} must name layers of the {n_layers}-layer network."
        )
    return tuple(sorted({i % n_layers for i in chosen}))


def _per_layer(sigma: float | tuple[float, ...], n_layers: int, dtype: Any) -> list[Array]:
    if not isinstance(sigma, tuple | list):
        return [jnp.asarray(sigma, dtype)] * n_layers
    if len(sigma) != n_layers:
        raise ValueError(
            f"NodePerturbation.sigma = {tuple(sigma)} has {len(sigma)} values; the network "
            f"has {n_layers} layers: give one per layer or a single number."
        )
    return [jnp.asarray(v, dtype) for v in sigma]


class NodePerturbation(AbstractEstimator):
    """Free-running node perturbation of one or more layers of a network objective.

    Attributes:
        sigma: standard deviation of the per-step noise on the pre-activations (units of
            the layer's drive: uA/cm^2 for Hodgkin-Huxley layers), or a tuple with one per
            layer of the network. A spiking layer's output moves with its drive only near
            threshold, so a hidden layer may need several times the output layer's sigma.
        samples: perturbed simulations per example (>= 2); ``samples + 1`` evaluations. A
            tuple gives one count per layer of the network, for an estimator that perturbs
            one layer at a time (``Alternate``, or ``layers=(i,)``): a hidden layer of 100
            neurons needs more draws than an output layer of 10 for the same accuracy.
        layers: indices of the perturbed layers (None: all); the gradient of the other
            layers' parameters is 0. Wrap in ``Alternate`` with layer groups, or pass one
            layer, to perturb one layer at a time.
        hold: steps each noise draw is held for (1: white noise; None: one draw for the
            whole simulation). Must divide the objective's number of steps.
        antithetic: run every noise draw with both signs (``samples`` even): the pair's
            loss difference cancels the baseline and the even orders of the loss in
            ``sigma`` (curvature). It pays near a minimum, where curvature dominates the
            estimate's noise; elsewhere, at equal cost, it sees half as many directions.
        reuse_lower: when no layer below ``min(layers)`` is perturbed, simulate those
            layers once per example and feed their recorded output to every perturbed run
            (:meth:`~weakgrad.objectives.network.NetworkObjective.tail`). Same numbers. Not
            under an activity penalty (its loss counts the lower layers' spikes too). Under
            ``jax.vmap`` the unperturbed lower layers already run once per example in the
            perturbed runs; this also spares their second run in the eligibility pass
            (MNIST HH 784-100-10, output layer: 1.44x faster at S = 4, 1.09x at S = 32;
            ``benchmarks/node_layers.py``), for ``B x steps x n`` values of memory (``n``:
            the width of the layer below). ``EstimatorInfo.evals`` still counts
            whole-network evaluations.
    """

    sigma: float | tuple[float, ...] = 0.1
    samples: int | tuple[int, ...] = eqx.field(static=True, default=32)
    layers: tuple[int, ...] | None = eqx.field(static=True, default=None)
    hold: int | None = eqx.field(static=True, default=1)
    antithetic: bool = eqx.field(static=True, default=False)
    reuse_lower: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if isinstance(self.sigma, tuple | list):
            if not self.sigma:
                raise ValueError("NodePerturbation.sigma = () needs one value per layer.")
            for i, v in enumerate(self.sigma):
                _check_positive("NodePerturbation", **{f"sigma[{i}]": v})
        else:
            _check_positive("NodePerturbation", sigma=self.sigma)
        if self.hold is not None and not (isinstance(self.hold, int) and self.hold >= 1):
            raise ValueError(
                f"NodePerturbation.hold must be a positive int (steps) or None (the whole "
                f"run), got {self.hold!r}."
            )
        counts = self.samples if isinstance(self.samples, tuple) else (self.samples,)
        if not counts or not all(isinstance(c, int) and c >= 2 for c in counts):
            raise ValueError(
                f"NodePerturbation.samples must be an int >= 2 (the baseline is their mean) "
                f"or a tuple of them, one per layer, got {self.samples!r}."
            )
        for c in counts:
            _check_pairs("NodePerturbation", c, self.antithetic)

    def _samples(self, layers: tuple[int, ...], n_layers: int) -> int:
        if isinstance(self.samples, int):
            return self.samples
        if len(self.samples) != n_layers:
            raise ValueError(
                f"NodePerturbation.samples = {self.samples} has {len(self.samples)} counts; "
                f"the network has {n_layers} layers: give one per layer or a single number."
            )
        if len(layers) != 1:
            raise ValueError(
                f"NodePerturbation.samples = {self.samples} (one count per layer) needs one "
                "perturbed layer per estimate: wrap it in Alternate or pass layers=(i,)."
            )
        return self.samples[layers[0]]

    def for_layer(self, layer: int) -> AbstractEstimator:
        # Inject noise into that layer only, instead of perturbing every layer and
        # discarding all but one layer's gradient.
        return dataclasses.replace(self, layers=(layer,))

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        layers = _layers(objective, self.layers, "NodePerturbation")
        s = self._samples(layers, len(objective.net.layers))
        b = objective.batch_size
        hold = objective.steps if self.hold is None else self.hold
        if objective.steps % hold:
            raise ValueError(
                f"NodePerturbation.hold = {hold} does not divide the objective's "
                f"{objective.steps} steps; choose a divisor (or None for the whole run)."
            )
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        sigma = _per_layer(self.sigma, len(objective.net.layers), dtype)
        k_noise, k_sim = jax.random.split(key)
        widths = [la.n_out for la in objective.net.layers]
        # Noise keys and sigmas stay indexed by the whole network's layers; the simulations
        # may run only the layers from `first` up, on the recorded output of those below.
        # (Not under an activity penalty: a tail loses the spikes of the layers below.)
        first = layers[0] if self.reuse_lower and not penalises_activity(objective) else 0
        full_params = params
        if first:
            objective, params = objective.tail(params, k_sim, first), params[first:]
        # Antithetic pairs share a stream: draws 0..n-1 run with sign +1, then again with -1.
        n = s // 2 if self.antithetic else s
        # Key words of every (draw, example) noise stream, per layer: (n, B, 2, n_out).
        words = {i: layer_noise_words(k_noise, i, (n, b), widths[i]) for i in layers}
        run_words, signs = words, jnp.ones((n,), dtype)
        if self.antithetic:
            run_words = {i: jnp.concatenate([w, w]) for i, w in words.items()}
            signs = jnp.concatenate([signs, -signs])

        def perturbed(words_s, sign):  # losses (B,) of sample s, each example its own stream
            noise = NodeNoise(
                tuple(
                    LayerNoise(
                        i - first,
                        words_s[i][:, None],
                        jnp.full((b, 1), sign, dtype),
                        jnp.full((b,), sigma[i]),
                        hold=hold,
                    )  # fmt: skip
                    for i in layers
                )
            )
            return objective.per_example(params, k_sim, noise)

        sharded, _ = shard_population((run_words, signs))
        losses = jax.vmap(perturbed)(*sharded)[:s]  # (S, B)
        if self.antithetic:
            # sum over pairs (L+ - L-) xi / (sigma S): the baseline and even orders cancel.
            diff = (losses[:n] - losses[n:]) / (s * b * hold)  # (n, B)
        else:
            diff = (losses - losses.mean(0)) / ((s - 1) * b * hold)  # (S, B)
        noise = NodeNoise(
            tuple(
                LayerNoise(
                    i - first,
                    jnp.moveaxis(words[i], 0, 1),  # (B, n, 2, n_out)
                    diff.T / (sigma[i] * sigma[i]),  # (B, n)
                    jnp.full((b,), sigma[i]),
                    inject=False,
                    correlate=True,
                    hold=hold,
                )
                for i in layers
            )
        )
        # One unperturbed run per example regenerates every sample's noise and sums it
        # against the layer's input: the eligibility.
        base_losses, elig = objective.run(params, k_sim, noise)
        grads = list(jax.tree.map(jnp.zeros_like, full_params))
        for j, i in enumerate(layers):
            grads[i] = {name: elig[j][name].astype(dtype) for name in grads[i]}
        info = EstimatorInfo(jnp.asarray(s + 1, jnp.int32), base_losses.mean())
        return tuple(grads), state, info


class StepwiseNodePerturbation(AbstractEstimator):
    """Node perturbation probed at every step from the unperturbed state.

    The network runs once unperturbed; the loss's gradient with respect to the readout
    (the time-averaged output of the last layer) is taken by autodiff through the loss
    function only. Then, at every step, ``samples`` probes shift the layer's pre-activations
    by ``sigma * xi`` from the unperturbed state and measure the change of the readout's
    contribution in that step (:class:`~weakgrad.sim.network.StepProbe`); the per-step
    derivatives are multiplied by the layer's input at that step and summed over time.

    Only the immediate effect of a perturbation (within its step, through the layers above)
    is seen, never its effect on later steps; this is the variant's approximation. It is
    exact in expectation for a network simulated for a single step (an ordinary
    feed-forward network), and for the last layer it sees every effect the readout has.

    Attributes:
        sigma: probe size on the pre-activations (units of the layer's drive).
        samples: probes per step ``K``; the cost is about ``K`` extra network steps per step.
        layers: probed layers (None: all).
    """

    sigma: float = 0.1
    samples: int = eqx.field(static=True, default=16)
    layers: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        _check_positive("StepwiseNodePerturbation", sigma=self.sigma)
        if not (isinstance(self.samples, int) and self.samples >= 1):
            raise ValueError(
                f"StepwiseNodePerturbation.samples must be an int >= 1 (probes per step), "
                f"got {self.samples!r}."
            )

    def for_layer(self, layer: int) -> AbstractEstimator:
        # Inject noise into that layer only, instead of perturbing every layer and
        # discarding all but one layer's gradient.
        return dataclasses.replace(self, layers=(layer,))

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        layers = _layers(objective, self.layers, "StepwiseNodePerturbation")
        if not isinstance(objective.read, MeanOutput):
            raise ValueError(
                "StepwiseNodePerturbation probes each step's output, so it needs the "
                f"MeanOutput readout, got {type(objective.read).__name__}; use "
                "NodePerturbation for other readouts."
            )
        k, b = self.samples, objective.batch_size
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        k_noise, k_sim = jax.random.split(key)
        losses, readout_grad = objective.readout_gradient(params, k_sim)
        weights = readout_grad / objective.steps  # readout = mean over steps
        probes = StepProbes(
            tuple(
                LayerProbe(
                    i,
                    layer_noise_words(k_noise, i, (b, k), objective.net.layers[i].n_out),
                    jnp.full((b,), self.sigma, dtype),
                    weights.astype(dtype),
                )
                for i in layers
            )
        )
        _, elig = objective.run(params, k_sim, probes)
        grads = list(jax.tree.map(jnp.zeros_like, params))
        for j, i in enumerate(layers):
            grads[i] = {name: elig[j][name].astype(dtype) for name in grads[i]}
        return tuple(grads), state, EstimatorInfo(jnp.asarray(1 + k, jnp.int32), losses.mean())


def noisy_readouts(
    objective: AbstractNetworkObjective,
    params: Any,
    key: Array,
    sigma: tuple[float, ...],
    draws: int,
    hold: int | None = None,
) -> tuple[Array, Array]:
    """Readouts ``(draws, B, n_out)`` and validity ``(draws, B)`` of ``objective``'s batch
    under the node noise :class:`NodePerturbation` trains with: on layer ``i`` a Gaussian
    current of std ``sigma[i]`` (units of its drive; 0: none) added to each neuron's drive,
    redrawn every ``hold`` steps (None: held for the whole run), independent per draw and
    example. The estimate is the gradient of the loss averaged over this noise, so a
    prediction averaged over the draws is the prediction of the network it trains."""
    if not isinstance(objective, AbstractNetworkObjective):
        raise TypeError(
            f"noisy_readouts needs a network objective, got {type(objective).__name__}."
        )
    n_layers = len(objective.net.layers)
    if len(sigma) != n_layers or any(not v >= 0 for v in sigma):
        raise ValueError(
            f"noisy_readouts: sigma = {list(sigma)} needs one value >= 0 per layer ({n_layers})."
        )
    if not (isinstance(draws, int) and draws >= 1):
        raise ValueError(f"noisy_readouts: draws must be an int >= 1, got {draws!r}.")
    hold = objective.steps if hold is None else hold
    b, dtype = objective.batch_size, jax.tree_util.tree_leaves(params)[0].dtype
    k_noise, k_sim = jax.random.split(key)
    noisy = [i for i, v in enumerate(sigma) if v > 0]
    # (draws, B, 1, 2, n) key words per noisy layer: one stream per draw and example.
    words = {
        i: layer_noise_words(k_noise, i, (draws, b, 1), objective.net.layers[i].n_out)
        for i in noisy
    }

    def one(words_d):
        noise = NodeNoise(
            tuple(
                LayerNoise(
                    i,
                    words_d[i],
                    jnp.ones((b, 1), dtype),
                    jnp.full((b,), jnp.asarray(sigma[i], dtype)),
                    hold=hold,
                )  # fmt: skip
                for i in noisy
            )
        )
        return objective.readout(params, k_sim, noise)

    return jax.vmap(one, axis_size=draws)(words)
