"""Networks of neurons as pytrees, and their simulation as one ``lax.scan``.

A :class:`Network` is a tuple of :class:`Layer` s. Each layer has feed-forward weights from
the previous layer (or the external input), a bias current, optional recurrent weights
among its own neurons, a neuron model and a synapse model. A feed-forward stack, a chain,
n independent neurons and a complete graph on n neurons (self-connections included) are
all this one object; see the constructors.

:func:`simulate` integrates one network on one input. Batch over inputs, noise trials or
parameter samples with ``jax.vmap`` (over ``inputs``, ``key`` or the network itself).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.sim.neurons._base import AbstractNeuron
from weakgrad.sim.random import StepKey, normal, stream_keys
from weakgrad.sim.synapses import AbstractSynapse, Instantaneous

__all__ = [
    "Layer",
    "Network",
    "Record",
    "Inject",
    "NodeNoise",
    "StepProbe",
    "Trace",
    "SimulationError",
    "simulate",
]


class SimulationError(RuntimeError):
    """A simulation blew up (non-finite or out-of-range state)."""


def blow_up_message(dt: Any) -> str:
    dt_value = _concrete(dt)
    dt_text = f"dt={dt_value} ms" if dt_value is not None else "dt"
    return (
        f"simulation blew up (non-finite or out-of-range state): {dt_text} is too large or the "
        "input current too strong for this model; reduce dt (0.01 ms is safe for "
        "Hodgkin-Huxley) or the input."
    )


def _float_dtype(dtype: Any, *values: Any) -> Any:
    """``dtype`` if given, else the floating type of ``values`` (float32 unless they are
    float64 arrays: float64 is on request)."""
    if dtype is not None:
        return dtype
    return jnp.result_type(*values, jnp.float32)


def _concrete(x: Any) -> Any:
    """The Python value of ``x`` if it is known at trace time, else None."""
    try:
        return np.asarray(x).item() if np.ndim(x) == 0 else None
    except Exception:  # a tracer
        return None


class Layer(eqx.Module):
    """One population of identical neurons.

    Attributes:
        weight: ``(n_in, n_out)`` feed-forward weights; row = presynaptic, column =
            postsynaptic; units: postsynaptic current per unit presynaptic output.
        bias: ``(n_out,)`` constant current (same units as the neuron's input current).
        neuron: the neuron model of every unit in the layer.
        synapse: how the summed drive becomes input current.
        recurrent: optional ``(n_out, n_out)`` weights from the layer's own outputs at the
            previous step (row = presynaptic), diagonal = self-connections.
    """

    weight: Array
    bias: Array
    neuron: AbstractNeuron
    synapse: AbstractSynapse = Instantaneous()
    recurrent: Array | None = None

    def __check_init__(self):
        w, b = self.weight, self.bias
        if np.ndim(w) != 2:
            raise ValueError(f"Layer.weight must be 2-D (n_in, n_out), got shape {np.shape(w)}.")
        if np.shape(b) != (np.shape(w)[1],):
            raise ValueError(
                f"Layer.bias must have shape (n_out,) = ({np.shape(w)[1]},) to match weight "
                f"{np.shape(w)}, got {np.shape(b)}."
            )
        n = np.shape(w)[1]
        if self.recurrent is not None and np.shape(self.recurrent) != (n, n):
            raise ValueError(
                f"Layer.recurrent must have shape (n_out, n_out) = ({n}, {n}), "
                f"got {np.shape(self.recurrent)}."
            )

    @property
    def n_in(self) -> int:
        return int(np.shape(self.weight)[0])

    @property
    def n_out(self) -> int:
        return int(np.shape(self.weight)[1])


class Network(eqx.Module):
    """A tuple of layers; layer ``i`` feeds layer ``i + 1`` within the same step."""

    layers: tuple[Layer, ...]

    def __check_init__(self):
        if not self.layers:
            raise ValueError("Network.layers must hold at least one Layer.")
        for i in range(1, len(self.layers)):
            a, b = self.layers[i - 1], self.layers[i]
            if a.n_out != b.n_in:
                raise ValueError(
                    f"layer {i} expects {b.n_in} inputs but layer {i - 1} has {a.n_out} "
                    "neurons; make their sizes agree."
                )

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @classmethod
    def feedforward(
        cls,
        sizes: tuple[int, ...] | list[int],
        neuron: AbstractNeuron,
        *,
        key: Array,
        scale: float = 1.0,
        bias: float = 0.0,
        synapse: AbstractSynapse = Instantaneous(),
        dtype: Any = jnp.float32,
    ) -> Network:
        """Fully connected stack ``sizes[0] -> sizes[1] -> ...``, weights
        ``N(0, (scale / sqrt(fan_in))^2)``."""
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input size and at least one layer, got {sizes}.")
        keys = jax.random.split(key, len(sizes) - 1)
        layers = []
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
            w = scale / np.sqrt(n_in) * jax.random.normal(k, (n_in, n_out), dtype)
            layers.append(Layer(w, jnp.full((n_out,), bias, dtype), neuron, synapse))
        return cls(tuple(layers))

    @classmethod
    def independent(
        cls,
        n: int,
        neuron: AbstractNeuron,
        *,
        weight: float | Array = 1.0,
        bias: float | Array = 0.0,
        dtype: Any = None,
    ) -> Network:
        """``n`` unconnected neurons driven by one shared input with per-neuron weights."""
        dtype = _float_dtype(dtype, weight, bias)
        w = jnp.broadcast_to(jnp.asarray(weight, dtype), (n,)).reshape(1, n)
        b = jnp.broadcast_to(jnp.asarray(bias, dtype), (n,))
        return cls((Layer(w, b, neuron),))

    @classmethod
    def complete_graph(
        cls,
        n: int,
        neuron: AbstractNeuron,
        *,
        recurrent: Array | float = 0.0,
        bias: float | Array = 0.0,
        synapse: AbstractSynapse = Instantaneous(),
        dtype: Any = None,
    ) -> Network:
        """``n`` neurons connected all-to-all including self-connections, driven only by their
        bias current (the single input has zero weights)."""
        dtype = _float_dtype(dtype, recurrent, bias)
        r = jnp.broadcast_to(jnp.asarray(recurrent, dtype), (n, n))
        b = jnp.broadcast_to(jnp.asarray(bias, dtype), (n,))
        return cls((Layer(jnp.zeros((1, n), dtype), b, neuron, synapse, r),))

    @classmethod
    def chain(
        cls,
        n: int,
        neuron: AbstractNeuron,
        *,
        weight: float | Array = 1.0,
        input_weight: float | Array = 1.0,
        dtype: Any = None,
    ) -> Network:
        """Neurons ``0 -> 1 -> ... -> n-1``; neuron 0 gets the external input."""
        dtype = _float_dtype(dtype, weight, input_weight)
        layers = [Layer(jnp.full((1, 1), input_weight, dtype), jnp.zeros((1,), dtype), neuron)]
        for _ in range(n - 1):
            layers.append(Layer(jnp.full((1, 1), weight, dtype), jnp.zeros((1,), dtype), neuron))
        return cls(tuple(layers))


class Record(eqx.Module):
    """What :func:`simulate` keeps. Time series cost ``steps x neurons`` memory each.

    Attributes:
        counts: spike counts per neuron (int32).
        mean_output: time average of each neuron's output value (what it sends on).
        spikes: spike events per step (bool, ``(steps, n)``).
        outputs: output values per step.
        voltages: membrane potential (mV) per step, after the step's update.
        mean_voltage: time average of each neuron's membrane potential (mV): a graded
            readout that, unlike spike counts, moves with the drive below threshold too.
    """

    counts: bool = eqx.field(static=True, default=True)
    mean_output: bool = eqx.field(static=True, default=True)
    spikes: bool = eqx.field(static=True, default=False)
    outputs: bool = eqx.field(static=True, default=False)
    voltages: bool = eqx.field(static=True, default=False)
    mean_voltage: bool = eqx.field(static=True, default=False)


class Inject(eqx.Module):
    """Currents added to one layer's drive at every step (used by node perturbation).

    Attributes:
        layer: index of the layer.
        current: ``(n_out,)`` for a constant current or ``(steps, n_out)`` per step.
    """

    layer: int = eqx.field(static=True)
    current: Array


class NodeNoise(eqx.Module):
    """Gaussian noise on one layer's pre-activations, drawn inside the simulation (node
    perturbation; study 000, "Optimizing Methods to Make Them VIABLE").

    The noise of stream ``k`` at step ``t`` is ``xi_k(t) ~ N(0, std^2)`` per neuron, from the
    counter-based generator, so a stream is reproduced exactly from its key words. The
    simulation uses the combination ``eta(t) = sum_k weights_k xi_k(t)``:

    - ``inject``: ``eta(t)`` is added to the layer's drive;
    - ``correlate``: the trace's ``eligibility`` holds ``sum_t x(t)^T eta(t)`` (shape of the
      layer's weight: ``x`` is the layer's input at step ``t``), ``sum_t eta(t)`` (bias)
      and, for a recurrent layer, ``sum_t y(t-1)^T eta(t)``.

    Attributes:
        layer: index of the layer.
        words: uint32 ``(K, 2, n_out)``: the key words of ``K`` noise streams
            (:func:`weakgrad.sim.random.stream_keys`).
        weights: ``(K,)`` coefficients of the streams.
        std: standard deviation of each stream (units of the layer's drive).
        inject: add ``eta`` to the drive.
        correlate: accumulate the eligibility.
        hold: steps each draw is held for: ``xi(t)`` is drawn at ``t // hold`` (1: white
            noise, a fresh draw every step).
    """

    layer: int = eqx.field(static=True)
    words: Array
    weights: Array
    std: float | Array
    inject: bool = eqx.field(static=True, default=True)
    correlate: bool = eqx.field(static=True, default=False)
    hold: int = eqx.field(static=True, default=1)

    def eta(self, t: Array, dtype: Any) -> Array:
        words = jnp.moveaxis(self.words, 1, 0)  # StepKey wants (2, K, n_out)
        block = t if self.hold == 1 else t // self.hold
        xi = normal(StepKey(words, block, stream=_NODE_NOISE_STREAM), dtype)  # (K, n_out)
        return self.std * (self.weights.astype(dtype) @ xi)


_NODE_NOISE_STREAM = 7
_PROBE_STREAM = 8


def layer_noise_words(key: Array, layer: int, lead: tuple[int, ...], n_out: int) -> Array:
    """Key words ``(*lead, 2, n_out)`` of independent noise streams for one layer (the
    ``words`` of :class:`NodeNoise` and :class:`StepProbe`): one stream per index of
    ``lead`` (e.g. draw and example), derived from ``key`` and the layer's index."""
    return jnp.moveaxis(stream_keys(jax.random.fold_in(key, layer), (*lead, n_out)), 0, -2)


class StepProbe(eqx.Module):
    """Per-step perturbation probes of one layer's pre-activations, each started from the
    unperturbed state (the study's first node-perturbation variant: "return all the neurons
    to the same state every timestep for sampling").

    At every step ``t`` the simulation also advances, from the same pre-step state and with
    the same neuron noise, ``K`` copies of layers ``layer .. last`` whose pre-activation at
    ``layer`` is shifted by ``std * xi_k(t)``, ``xi_k ~ N(0, 1)``. With ``delta_k(t) =
    readout . (y_k(t) - y(t))`` (``y``: last layer's output), the estimate of the derivative
    of ``sum_t readout . y(t)`` with respect to the pre-activation at step ``t`` is
    ``g(t) = sum_k delta_k(t) xi_k(t) / (K std)``, and the trace's ``probe_eligibility``
    holds ``sum_t x(t)^T g(t)`` (weight), ``sum_t g(t)`` (bias) and, for a recurrent layer,
    ``sum_t y_layer(t-1)^T g(t)``. Only the effect within the same step is seen: the probes
    never change the state the run continues from.

    Attributes:
        layer: index of the probed layer.
        words: uint32 ``(K, 2, n_out)`` key words of the ``K`` probe streams.
        std: probe size (units of the layer's drive).
        readout: ``(n_last,)`` weights on the last layer's outputs.
    """

    layer: int = eqx.field(static=True)
    words: Array
    std: float | Array
    readout: Array


class Trace(eqx.Module):
    """Result of :func:`simulate`; every recorded field is a tuple with one entry per layer
    (None where not recorded). ``valid`` is False if any state blew up during the run."""

    counts: tuple[Array, ...] | None
    mean_output: tuple[Array, ...] | None
    spikes: tuple[Array, ...] | None
    outputs: tuple[Array, ...] | None
    voltages: tuple[Array, ...] | None
    final_state: tuple[Any, ...]
    dt: Any
    valid: Array  # bool scalar: False if any state ever blew up during the run
    eligibility: tuple[dict[str, Array], ...] | None = None  # one per correlating NodeNoise
    probe_eligibility: tuple[dict[str, Array], ...] | None = None  # one per StepProbe
    mean_voltage: tuple[Array, ...] | None = None  # mV, with Record(mean_voltage=True)

    def spike_times(self, layer: int = -1) -> list[np.ndarray]:
        """Spike times (ms, step index times dt) of each neuron of ``layer``; needs
        ``Record(spikes=True)``. Not jittable: returns NumPy arrays."""
        if self.spikes is None:
            raise ValueError("spike times need simulate(..., record=Record(spikes=True)).")
        s = np.asarray(self.spikes[layer])
        dt = float(self.dt)
        return [np.nonzero(s[:, j])[0] * dt for j in range(s.shape[1])]


def _validate_noise(net: Network, noise: tuple[NodeNoise, ...]) -> None:
    seen = set()
    for nn in noise:
        if not isinstance(nn, NodeNoise):
            raise TypeError(f"noise must hold NodeNoise objects, got {type(nn).__name__}.")
        if not -len(net.layers) <= nn.layer < len(net.layers):
            raise ValueError(
                f"NodeNoise.layer={nn.layer} is out of range for {len(net.layers)} layers."
            )
        layer = nn.layer % len(net.layers)
        if layer in seen:
            raise ValueError(f"two NodeNoise objects target layer {layer}; combine their streams.")
        seen.add(layer)
        n = net.layers[layer].n_out
        k = np.shape(nn.weights)
        if len(k) != 1 or np.shape(nn.words) != (k[0], 2, n):
            raise ValueError(
                f"NodeNoise for layer {layer} needs words of shape (K, 2, {n}) and weights of "
                f"shape (K,), got {np.shape(nn.words)} and {k}."
            )


def _validate(net: Network, inputs: Array, dt: Any, steps: Any, inject: Inject | None) -> None:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a weakgrad.Network, got {type(net).__name__}.")
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a positive int (number of dt steps), got {steps!r}.")
    dt_value = _concrete(dt)  # None when dt is traced: the runtime check covers it
    if dt_value is not None and not dt_value > 0:
        raise ValueError(f"dt must be a positive time step in ms, got dt={dt_value}; try dt=0.01.")
    for i, layer in enumerate(net.layers):
        limit = layer.neuron.max_dt
        if dt_value is not None and limit is not None and dt_value > limit:
            raise ValueError(
                f"dt={dt_value} ms is above the {limit} ms limit of {type(layer.neuron).__name__}"
                f" (layer {i}): its integration loses spikes and leaves the physical range "
                "there; use dt <= 0.1 ms (0.01 ms for accurate spike times)."
            )
    shape = np.shape(inputs)
    if len(shape) == 1:
        ok = shape[0] == net.n_in
    elif len(shape) == 2:
        ok = shape == (steps, net.n_in)
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"inputs must have shape (n_in,) = ({net.n_in},) for a constant input or "
            f"(steps, n_in) = ({steps}, {net.n_in}) per step, got {shape}; batch with jax.vmap."
        )
    if inject is not None:
        if not -len(net.layers) <= inject.layer < len(net.layers):
            raise ValueError(
                f"Inject.layer={inject.layer} is out of range for {len(net.layers)} layers."
            )
        n = net.layers[inject.layer].n_out
        if np.shape(inject.current) not in ((n,), (steps, n)):
            raise ValueError(
                f"Inject.current must have shape ({n},) or (steps, {n}) = ({steps}, {n}), "
                f"got {np.shape(inject.current)}."
            )


def simulate(
    net: Network,
    inputs: Array,
    *,
    dt: float | Array,
    steps: int,
    key: Array | None = None,
    inject: Inject | None = None,
    record: Record = Record(),
    check: bool = True,
    noise: NodeNoise | tuple[NodeNoise, ...] = (),
    probes: StepProbe | tuple[StepProbe, ...] = (),
    streams: tuple[Array | None, ...] | None = None,
) -> Trace:
    """Integrate ``net`` for ``steps`` steps of ``dt`` ms from rest.

    Args:
        net: the network.
        inputs: external input, ``(n_in,)`` held constant or ``(steps, n_in)`` per step.
        dt: time step in ms.
        steps: number of steps (a Python int; the duration is ``steps * dt``).
        key: JAX PRNG key; required when any neuron is stochastic. Each layer's neurons get
            their own counter-based noise streams derived from it.
        inject: optional currents added to one layer's drive (pre-activation) every step.
        record: what to keep; by default spike counts and mean outputs only, so memory does
            not grow with ``steps``.
        check: raise at run time (also under ``jit``, via ``equinox.error_if``) if any
            neuron's state blows up (non-finite or far outside its physical range). Pass
            False inside computations sharded over several devices, where a raising
            callback aborts the process, and test ``Trace.valid`` on the host instead.

    Returns:
        A :class:`Trace`.
    """
    _validate(net, inputs, dt, steps, inject)
    noise = (noise,) if isinstance(noise, NodeNoise) else tuple(noise)
    _validate_noise(net, noise)
    probes = (probes,) if isinstance(probes, StepProbe) else tuple(probes)
    for pr in probes:
        if not isinstance(pr, StepProbe) or not -len(net.layers) <= pr.layer < len(net.layers):
            raise ValueError(f"probes must be StepProbe objects on existing layers, got {pr!r}.")
        n = net.layers[pr.layer].n_out
        if np.ndim(pr.words) != 3 or np.shape(pr.words)[1:] != (2, n):
            raise ValueError(
                f"StepProbe.words must have shape (K, 2, {n}), got {np.shape(pr.words)}."
            )
        if np.shape(pr.readout) != (net.layers[-1].n_out,):
            raise ValueError(
                f"StepProbe.readout must have shape ({net.layers[-1].n_out},), "
                f"got {np.shape(pr.readout)}."
            )
    layers = net.layers
    n_layers = len(layers)
    inj_layer = None if inject is None else inject.layer % n_layers
    dtype = jnp.result_type(inputs, layers[0].weight)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    inputs = jnp.asarray(inputs, dtype)

    words: list[Array | None] = []
    if streams is not None and len(streams) != n_layers:
        raise ValueError(f"streams must hold one entry per layer ({n_layers}), got {len(streams)}.")
    for i, layer in enumerate(layers):
        if streams is not None and streams[i] is not None:
            if np.shape(streams[i]) != (2, layer.n_out):
                raise ValueError(
                    f"streams[{i}] must be uint32 key words of shape (2, {layer.n_out}), got "
                    f"{np.shape(streams[i])}; make them with weakgrad.sim.random.stream_keys."
                )
            words.append(jnp.asarray(streams[i], jnp.uint32))
        elif layer.neuron.stochastic:
            if key is None:
                raise ValueError(
                    f"layer {i} has a stochastic neuron ({type(layer.neuron).__name__}): "
                    "pass key=jax.random.key(seed)."
                )
            words.append(stream_keys(jax.random.fold_in(key, i), (layer.n_out,)))
        else:
            words.append(None)

    neuron_states = tuple(la.neuron.init_state((la.n_out,), dtype) for la in layers)
    syn_states = tuple(la.synapse.init_state((la.n_out,), dtype) for la in layers)
    prev_out = tuple(
        jnp.zeros((la.n_out,), dtype) if la.recurrent is not None else None for la in layers
    )
    noise_at = {nn.layer % n_layers: j for j, nn in enumerate(noise)}

    def layer_of(k: int) -> int:  # layer of eligibility entry k (noise first, then probes)
        src = noise[k] if k < len(noise) else probes[k - len(noise)]
        return src.layer % n_layers

    elig0 = []
    for nn in noise:
        la = layers[nn.layer % n_layers]
        e = {"weight": jnp.zeros((la.n_in, la.n_out), dtype), "bias": jnp.zeros((la.n_out,), dtype)}
        if la.recurrent is not None:
            e["recurrent"] = jnp.zeros((la.n_out, la.n_out), dtype)
        elig0.append(e if nn.correlate else None)
    for pr in probes:
        la = layers[pr.layer % n_layers]
        e = {"weight": jnp.zeros((la.n_in, la.n_out), dtype), "bias": jnp.zeros((la.n_out,), dtype)}
        if la.recurrent is not None:
            e["recurrent"] = jnp.zeros((la.n_out, la.n_out), dtype)
        elig0.append(e)
    n_noise_elig = len(noise)
    counts = tuple(jnp.zeros((la.n_out,), jnp.int32) for la in layers) if record.counts else None
    # Running sums of the outputs ("out") and membrane potentials ("v") for the averages.
    sums = {
        name: tuple(jnp.zeros((la.n_out,), dtype) for la in layers)
        for name, on in (("out", record.mean_output), ("v", record.mean_voltage))
        if on
    }

    per_step_input = inputs.ndim == 2
    per_step_inject = inject is not None and jnp.ndim(inject.current) == 2
    xs = {"t": jnp.arange(steps, dtype=jnp.uint32)}
    if per_step_input:
        xs["x"] = inputs
    if per_step_inject:
        xs["inject"] = jnp.asarray(inject.current, dtype)

    drive0 = None if per_step_input else inputs @ layers[0].weight + layers[0].bias
    # Noise held for the whole run is one draw: make it once, not at every step (drawing
    # costs about as much as a neuron's step).
    eta0 = {j: nn.eta(jnp.uint32(0), dtype) for j, nn in enumerate(noise) if nn.hold >= steps}

    def body(carry, x_t):
        n_states, s_states, prev, cnt, sm, bad, elig = carry
        elig = list(elig)
        t = x_t["t"]
        x = x_t["x"] if per_step_input else inputs
        new_n, new_s, new_prev, outs = [], [], [], []
        layer_in, drives, step_keys = [], [], []
        for i, layer in enumerate(layers):
            layer_in.append(x)
            # A constant input's drive is computed once, outside the loop (for MNIST it is
            # a 784 x 100 product, far more work than the neurons' step).
            drive = drive0 if (i == 0 and drive0 is not None) else x @ layer.weight + layer.bias
            if layer.recurrent is not None:
                drive = drive + prev[i] @ layer.recurrent
            if i == inj_layer:
                drive = drive + (x_t["inject"] if per_step_inject else inject.current)
            if i in noise_at:
                j = noise_at[i]
                nn = noise[j]
                eta = eta0[j] if j in eta0 else nn.eta(t, dtype)
                if nn.inject:
                    drive = drive + eta
                if nn.correlate:
                    e = dict(elig[j])
                    if not (i == 0 and drive0 is not None):  # constant input: outer at the end
                        e["weight"] = e["weight"] + jnp.outer(x, eta)
                    e["bias"] = e["bias"] + eta
                    if layer.recurrent is not None:
                        e["recurrent"] = e["recurrent"] + jnp.outer(prev[i], eta)
                    elig[j] = e
            drives.append(drive)
            s_state, current = layer.synapse.step(s_states[i], drive, dt)
            k = None if words[i] is None else StepKey(words[i], t)
            step_keys.append(k)
            n_state, out = layer.neuron.step(n_states[i], current, dt, key=k)
            new_n.append(n_state)
            new_s.append(s_state)
            new_prev.append(out.value if layer.recurrent is not None else None)
            outs.append(out)
            x = out.value
        for j, pr in enumerate(probes):
            first = pr.layer % n_layers
            xi = normal(StepKey(jnp.moveaxis(pr.words, 1, 0), t, stream=_PROBE_STREAM), dtype)

            def probe_output(eta, first=first):
                # Layers first..last again from their pre-step states, same neuron noise.
                x_p = None
                for i in range(first, n_layers):
                    la = layers[i]
                    if i == first:
                        drive = drives[i] + eta
                    else:
                        drive = x_p @ la.weight + la.bias
                        if la.recurrent is not None:
                            drive = drive + prev[i] @ la.recurrent
                    _, current = la.synapse.step(s_states[i], drive, dt)
                    _, out = la.neuron.step(n_states[i], current, dt, key=step_keys[i])
                    x_p = out.value
                return x_p

            y_k = jax.vmap(probe_output)(pr.std * xi)  # (K, n_last)
            delta = (y_k - outs[-1].value) @ pr.readout.astype(dtype)  # (K,)
            g = (delta @ xi) / (xi.shape[0] * pr.std)
            e = dict(elig[n_noise_elig + j])
            if not (first == 0 and drive0 is not None):  # constant input: outer at the end
                e["weight"] = e["weight"] + jnp.outer(layer_in[first], g)
            e["bias"] = e["bias"] + g
            if layers[first].recurrent is not None:
                e["recurrent"] = e["recurrent"] + jnp.outer(prev[first], g)
            elig[n_noise_elig + j] = e
        if cnt is not None:
            cnt = tuple(c + o.spike.astype(jnp.int32) for c, o in zip(cnt, outs, strict=True))
        if "out" in sm:
            sm = {**sm, "out": tuple(s + o.value for s, o in zip(sm["out"], outs, strict=True))}
        if "v" in sm:
            v_now = (la.neuron.voltage(st) for la, st in zip(layers, new_n, strict=True))
            sm = {**sm, "v": tuple(s + v for s, v in zip(sm["v"], v_now, strict=True))}
        ys = {}
        if record.spikes:
            ys["spikes"] = tuple(o.spike > 0 for o in outs)
        if record.outputs:
            ys["outputs"] = tuple(o.value for o in outs)
        if record.voltages:
            pairs = zip(layers, new_n, strict=True)
            ys["voltages"] = tuple(la.neuron.voltage(st) for la, st in pairs)
        # Elementwise running flag (no per-step reduction): did any state ever blow up?
        bad = tuple(
            b | ~la.neuron.is_valid(st) for b, la, st in zip(bad, layers, new_n, strict=True)
        )
        return (tuple(new_n), tuple(new_s), tuple(new_prev), cnt, sm, bad, tuple(elig)), ys

    bad0 = tuple(jnp.zeros((la.n_out,), bool) for la in layers)
    carry0 = (neuron_states, syn_states, prev_out, counts, sums, bad0, tuple(elig0))
    (final_n, _, _, counts, sums, bad, elig), ys = jax.lax.scan(body, carry0, xs)
    if drive0 is not None:
        # With a constant input x, sum_t x^T eta(t) = x^T sum_t eta(t): one outer product
        # instead of one per step (for MNIST, 784 x 100 per step otherwise).
        elig = tuple(
            e if e is None or layer_of(k) != 0 else {**e, "weight": jnp.outer(inputs, e["bias"])}
            for k, e in enumerate(elig)
        )

    ok = ~jnp.any(jnp.stack([jnp.any(b) for b in bad]))
    if check:
        # Guard every output, so the check survives when only some of them are used.
        final_n, counts, sums, ys = eqx.error_if(
            (final_n, counts, sums, ys), ~ok, blow_up_message(dt)
        )
    mean_output = tuple(s / steps for s in sums["out"]) if "out" in sums else None
    mean_voltage = tuple(s / steps for s in sums["v"]) if "v" in sums else None
    return Trace(
        counts=counts,
        mean_output=mean_output,
        spikes=ys.get("spikes"),
        outputs=ys.get("outputs"),
        voltages=ys.get("voltages"),
        final_state=final_n,
        dt=dt,
        valid=ok,
        eligibility=tuple(e for e in elig[:n_noise_elig] if e is not None) or None,
        probe_eligibility=tuple(elig[n_noise_elig:]) or None,
        mean_voltage=mean_voltage,
    )
