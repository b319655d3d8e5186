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

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.sim.init import AbstractInit
from weakgrad.sim.neurons._base import AbstractNeuron
from weakgrad.sim.random import StepKey, stream_keys
from weakgrad.sim.synapses import AbstractSynapse, Instantaneous

__all__ = [
    "Layer",
    "Network",
    "Record",
    "AbstractPerturbation",
    "Inject",
    "StepContext",
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
    # Python numbers (weak types) take the arrays' type; an explicit rule rather than
    # jnp.result_type, which strict dtype promotion forbids for float32 with float64.
    wide = any(getattr(v, "dtype", None) == jnp.float64 for v in values)
    return jnp.float64 if wide else jnp.float32


def _broadcast(owner: str, name: str, value: Any, shape: tuple[int, ...], dtype: Any) -> Array:
    """``value`` broadcast to ``shape``, or a ValueError naming the argument."""
    try:
        return jnp.broadcast_to(jnp.asarray(value, dtype), shape)
    except (ValueError, TypeError):
        raise ValueError(
            f"{owner}: {name} has shape {np.shape(value)}, which does not broadcast to {shape}; "
            f"give one value or {shape[0]}."
        ) from None


def _check_key(key: Any) -> None:
    typed = isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    raw = isinstance(key, jax.Array | np.ndarray) and key.dtype == np.uint32 and key.shape == (2,)
    if not (typed or raw):
        raise TypeError(
            f"key must be a JAX PRNG key such as jax.random.key(0), got {key!r}"[:200] + "."
        )


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
        init: AbstractInit | None = None,
    ) -> Network:
        """Fully connected stack ``sizes[0] -> sizes[1] -> ...``, weights
        ``N(0, (scale / sqrt(fan_in))^2)``, or drawn by ``init`` (an
        :class:`~weakgrad.sim.init.AbstractInit`, e.g. ``Orthogonal(gain)``; then ``scale``
        must stay 1) with the same per-layer keys."""
        if len(sizes) < 2:
            raise ValueError(f"sizes needs an input size and at least one layer, got {sizes}.")
        if init is not None and scale != 1.0:
            raise ValueError(
                f"Network.feedforward: scale={scale} with init={init!r}; put the scale in the "
                "init (e.g. Gaussian(scale), Orthogonal(gain)) and leave scale at 1."
            )
        keys = jax.random.split(key, len(sizes) - 1)
        layers = []
        for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
            if init is None:
                w = scale / np.sqrt(n_in) * jax.random.normal(k, (n_in, n_out), dtype)
            else:
                w = init(k, n_in, n_out, dtype)
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
        w = _broadcast("Network.independent", "weight", weight, (n,), dtype).reshape(1, n)
        b = _broadcast("Network.independent", "bias", bias, (n,), dtype)
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
        r = _broadcast("Network.complete_graph", "recurrent", recurrent, (n, n), dtype)
        b = _broadcast("Network.complete_graph", "bias", bias, (n,), dtype)
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
        spikes: spike events per step, ``(steps, n)`` of 0/1 in the simulation's float type
            (a spike with a surrogate derivative carries it: spike-train losses train by
            surrogate gradients).
        outputs: output values per step.
        voltages: membrane potential (mV) per step, after the step's update.
        mean_voltage: time average of each neuron's membrane potential (mV): a graded
            readout that, unlike spike counts, moves with the drive below threshold too.
        currents: input current into each neuron per step (uA/cm^2 for HH neurons; the
            weighted input after the synapse, perturbation included), ``(steps, n)``.
    """

    counts: bool = eqx.field(static=True, default=True)
    mean_output: bool = eqx.field(static=True, default=True)
    spikes: bool = eqx.field(static=True, default=False)
    outputs: bool = eqx.field(static=True, default=False)
    voltages: bool = eqx.field(static=True, default=False)
    mean_voltage: bool = eqx.field(static=True, default=False)
    currents: bool = eqx.field(static=True, default=False)


class StepContext(eqx.Module):
    """One step of :func:`simulate` as a perturbation sees it after every layer has moved:
    what each layer received and the state it moved from (every tuple has one entry per
    layer).

    Attributes:
        t: the step index (uint32).
        layer_in: the input each layer received (the layer below's output, or the external
            input for layer 0).
        drive: each layer's drive after the perturbation's :meth:`~AbstractPerturbation.drive`.
        neuron_state, synapse_state: the states each layer moved from.
        prev: each recurrent layer's output at the previous step (None: not recurrent).
        step_key: each stochastic layer's :class:`~weakgrad.sim.random.StepKey` (None: none).
        output: each layer's output value in this step.
    """

    t: Array
    layer_in: tuple[Array, ...]
    drive: tuple[Array, ...]
    neuron_state: tuple[Any, ...]
    synapse_state: tuple[Any, ...]
    prev: tuple[Array | None, ...]
    step_key: tuple[StepKey | None, ...]
    output: tuple[Array, ...]
    constant_input: bool = eqx.field(static=True)  # layer 0's input is the same every step


class AbstractPerturbation(eqx.Module):
    """The one way into a running simulation: something that adds to layers' drive (the
    summed input current before the synapse, "pre-activation") and may accumulate a result
    over the run, returned as :attr:`Trace.perturbation`.

    :func:`simulate` calls :meth:`init` once, :meth:`drive` for every layer at every step
    (in layer order, so it sees each layer's input), :meth:`after_step` once per step when
    every layer has moved, and :meth:`finish` at the end. The state is any pytree and must
    keep its structure and dtypes across steps (it is a ``lax.scan`` carry).
    """

    def check(self, net: Network, steps: int) -> None:
        """Raise ``ValueError`` (naming the field) if this perturbation does not fit ``net``."""

    def resolve(self, net: Network) -> AbstractPerturbation:
        """This perturbation with layer indices counted from 0 (e.g. -1 made the last
        layer's index); called by :func:`simulate` after :meth:`check`."""
        return self

    def init(self, net: Network, steps: int, dtype: Any) -> Any:
        """The state before the first step of a ``steps``-step run."""
        return None

    @abc.abstractmethod
    def drive(
        self,
        layer: int,
        t: Array,
        x: Array,
        prev: Array | None,
        drive: Array,
        state: Any,
        *,
        constant_input: bool,
    ) -> tuple[Array, Any]:
        """Layer ``layer``'s drive at step ``t`` and the new state.

        ``x`` is the layer's input at this step, ``prev`` its own output at the previous step
        (recurrent layers; None otherwise). ``constant_input`` is True when ``x`` is the same
        at every step (layer 0 under a constant external input), so that sums over time of
        ``x`` times something may be formed once, in :meth:`finish`.
        """

    def after_step(self, net: Network, dt: Any, ctx: StepContext, state: Any) -> Any:
        """The state after a whole step (default: unchanged)."""
        return state

    def finish(self, inputs: Array, state: Any) -> Any:
        """What :attr:`Trace.perturbation` holds (default: None)."""
        return None


class Inject(AbstractPerturbation):
    """Currents added to one layer's drive at every step.

    Attributes:
        layer: index of the layer.
        current: ``(n_out,)`` for a constant current or ``(steps, n_out)`` per step.
    """

    layer: int = eqx.field(static=True)
    current: Array

    def check(self, net: Network, steps: int) -> None:
        if not -len(net.layers) <= self.layer < len(net.layers):
            raise ValueError(
                f"Inject.layer={self.layer} is out of range for {len(net.layers)} layers."
            )
        n = net.layers[self.layer].n_out
        if np.shape(self.current) not in ((n,), (steps, n)):
            raise ValueError(
                f"Inject.current must have shape ({n},) or (steps, {n}) = ({steps}, {n}), "
                f"got {np.shape(self.current)}."
            )

    def resolve(self, net: Network) -> Inject:
        return Inject(self.layer % len(net.layers), self.current)

    def drive(self, layer, t, x, prev, drive, state, *, constant_input):
        if layer != self.layer:
            return drive, state
        current = self.current[t] if jnp.ndim(self.current) == 2 else self.current
        return drive + current.astype(drive.dtype), state


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
    mean_voltage: tuple[Array, ...] | None = None  # mV, with Record(mean_voltage=True)
    perturbation: Any = None  # what the perturbation accumulated (its finish())
    currents: tuple[Array, ...] | None = None  # per step, with Record(currents=True)

    def spike_times(self, layer: int = -1) -> list[np.ndarray]:
        """Spike times (ms, step index times dt) of each neuron of ``layer``; needs
        ``Record(spikes=True)``. Not jittable: returns NumPy arrays."""
        if self.spikes is None:
            raise ValueError("spike times need simulate(..., record=Record(spikes=True)).")
        s = np.asarray(self.spikes[layer])
        dt = float(self.dt)
        return [np.nonzero(s[:, j])[0] * dt for j in range(s.shape[1])]


def _validate(net: Network, inputs: Array, dt: Any, steps: Any) -> None:
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


class _Carry(eqx.Module):
    """The scan carry of :func:`simulate`: one entry per layer in each tuple."""

    neuron: tuple[Any, ...]
    synapse: tuple[Any, ...]
    prev: tuple[Array | None, ...]  # recurrent layers' outputs at the previous step
    counts: tuple[Array, ...] | None
    sums: dict[str, tuple[Array, ...]]  # running sums for time averages ("out", "v")
    bad: tuple[Array, ...]  # elementwise: did the state ever blow up?
    perturb: Any  # the perturbation's state


def simulate(
    net: Network,
    inputs: Array,
    *,
    dt: float | Array,
    steps: int,
    key: Array | None = None,
    perturb: AbstractPerturbation | None = None,
    record: Record = Record(),
    check: bool = True,
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
        perturb: optional :class:`AbstractPerturbation` (e.g. :class:`Inject`, currents
            added to a layer's drive); what it accumulates is ``Trace.perturbation``.
        record: what to keep; by default spike counts and mean outputs only, so memory does
            not grow with ``steps``.
        check: raise at run time (also under ``jit``, via ``equinox.error_if``) if any
            neuron's state blows up (non-finite or far outside its physical range). Pass
            False inside computations sharded over several devices, where a raising
            callback aborts the process, and test ``Trace.valid`` on the host instead.
        streams: optional key words ``(2, n_out)`` of each layer's neuron-noise streams
            (:func:`weakgrad.sim.random.stream_keys`; None entries: derived from ``key``),
            so that a part of a network can be run with the noise it sees in the whole.

    Returns:
        A :class:`Trace`.
    """
    if not isinstance(inputs, jax.Array | np.ndarray):
        try:  # a list or a number: an array of the default float type
            inputs = jnp.asarray(inputs, jnp.result_type(float))
        except (TypeError, ValueError):
            raise TypeError(
                f"inputs must be an array (n_in,) or (steps, n_in), got {type(inputs).__name__}."
            ) from None
    if key is not None:
        _check_key(key)
    _validate(net, inputs, dt, steps)
    if perturb is not None:
        if not isinstance(perturb, AbstractPerturbation):
            raise TypeError(
                f"perturb must be an AbstractPerturbation (e.g. Inject), got "
                f"{type(perturb).__name__}."
            )
        perturb.check(net, steps)
        perturb = perturb.resolve(net)
    layers = net.layers
    n_layers = len(layers)
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

    per_step_input = inputs.ndim == 2
    xs = {"t": jnp.arange(steps, dtype=jnp.uint32)}
    if per_step_input:
        xs["x"] = inputs
    # A constant input's drive is computed once, outside the loop (for MNIST it is a
    # 784 x 100 product, far more work than the neurons' step).
    drive0 = None if per_step_input else inputs @ layers[0].weight + layers[0].bias

    def body(carry: _Carry, x_t):
        t = x_t["t"]
        x = x_t["x"] if per_step_input else inputs
        p_state = carry.perturb
        new_n, new_s, new_prev, outs, currents = [], [], [], [], []
        layer_in, drives, step_keys = [], [], []
        for i, layer in enumerate(layers):
            layer_in.append(x)
            drive = drive0 if (i == 0 and drive0 is not None) else x @ layer.weight + layer.bias
            if layer.recurrent is not None:
                drive = drive + carry.prev[i] @ layer.recurrent
            if perturb is not None:
                drive, p_state = perturb.drive(
                    i, t, x, carry.prev[i], drive, p_state,
                    constant_input=i == 0 and drive0 is not None,
                )  # fmt: skip
            drives.append(drive)
            s_state, current = layer.synapse.step(carry.synapse[i], drive, dt)
            currents.append(current)
            k = None if words[i] is None else StepKey(words[i], t)
            step_keys.append(k)
            n_state, out = layer.neuron.step(carry.neuron[i], current, dt, key=k)
            new_n.append(n_state)
            new_s.append(s_state)
            new_prev.append(out.value if layer.recurrent is not None else None)
            outs.append(out)
            x = out.value
        if perturb is not None:
            ctx = StepContext(
                t, tuple(layer_in), tuple(drives), carry.neuron, carry.synapse, carry.prev,
                tuple(step_keys), tuple(o.value for o in outs), drive0 is not None,
            )  # fmt: skip
            p_state = perturb.after_step(net, dt, ctx, p_state)
        cnt, sm = carry.counts, carry.sums
        if cnt is not None:
            cnt = tuple(c + o.spike.astype(jnp.int32) for c, o in zip(cnt, outs, strict=True))
        if "out" in sm:
            sm = {**sm, "out": tuple(s + o.value for s, o in zip(sm["out"], outs, strict=True))}
        if "v" in sm:
            v_now = (la.neuron.voltage(st) for la, st in zip(layers, new_n, strict=True))
            sm = {**sm, "v": tuple(s + v for s, v in zip(sm["v"], v_now, strict=True))}
        ys = {}
        if record.spikes:
            ys["spikes"] = tuple(o.spike for o in outs)
        if record.outputs:
            ys["outputs"] = tuple(o.value for o in outs)
        if record.currents:
            ys["currents"] = tuple(currents)
        if record.voltages:
            pairs = zip(layers, new_n, strict=True)
            ys["voltages"] = tuple(la.neuron.voltage(st) for la, st in pairs)
        # Elementwise running flag (no per-step reduction): did any state ever blow up?
        bad = tuple(
            b | ~la.neuron.is_valid(st) for b, la, st in zip(carry.bad, layers, new_n, strict=True)
        )
        new = _Carry(tuple(new_n), tuple(new_s), tuple(new_prev), cnt, sm, bad, p_state)
        return new, ys

    carry0 = _Carry(
        neuron=tuple(la.neuron.init_state((la.n_out,), dtype) for la in layers),
        synapse=tuple(la.synapse.init_state((la.n_out,), dtype) for la in layers),
        prev=tuple(
            jnp.zeros((la.n_out,), dtype) if la.recurrent is not None else None for la in layers
        ),
        counts=(
            tuple(jnp.zeros((la.n_out,), jnp.int32) for la in layers) if record.counts else None
        ),
        sums={
            name: tuple(jnp.zeros((la.n_out,), dtype) for la in layers)
            for name, on in (("out", record.mean_output), ("v", record.mean_voltage))
            if on
        },
        bad=tuple(jnp.zeros((la.n_out,), bool) for la in layers),
        perturb=None if perturb is None else perturb.init(net, steps, dtype),
    )
    final, ys = jax.lax.scan(body, carry0, xs)
    final_n, counts, sums = final.neuron, final.counts, final.sums
    result = None if perturb is None else perturb.finish(inputs, final.perturb)

    ok = ~jnp.any(jnp.stack([jnp.any(b) for b in final.bad]))
    if check and _concrete(dt) is None:
        # A traced dt escapes the eager check in _validate: test it at run time.
        limits = [la.neuron.max_dt for la in layers if la.neuron.max_dt is not None]
        bad_dt = ~(dt > 0)
        if limits:
            bad_dt = bad_dt | (dt > min(limits))
        final_n, counts, sums, ys = eqx.error_if(
            (final_n, counts, sums, ys), bad_dt,
            f"dt must be a positive time step in ms, at most {min(limits, default=np.inf)} ms "
            "for these neurons (it was traced, so only checked at run time); try dt=0.01.",
        )  # fmt: skip
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
        mean_voltage=mean_voltage,
        perturbation=result,
        currents=ys.get("currents"),
    )
