"""Event-based simulation of LIF networks with exponential current synapses, and the adjoint
system that EventProp runs backward (Wunderlich & Pehle 2021, Sci. Rep. 11:12829).

Model (dimensionless potential, time in ms), for every neuron ``n`` of every layer::

    tau_mem dV/dt = -V + I        tau_syn dI/dt = -I

When ``V`` reaches ``threshold`` the neuron spikes: ``V`` is reset to 0 and the current of
every target ``j`` jumps by ``w_{n->j}`` (feed-forward weights to the next layer, recurrent
weights within the layer). An input spike of input ``i`` adds ``w_{i->j}`` to the first
layer's currents. ``tau_mem != tau_syn`` (the closed form below needs it).

**Forward** (:meth:`EventNetwork.simulate`): between events the system is linear and solved
in closed form, ``V(u) = V0 e^{-u/tau_mem} + A I0 (e^{-u/tau_syn} - e^{-u/tau_mem})`` with
``A = tau_syn / (tau_syn - tau_mem)``. ``V`` has at most one extremum per interval, so a
neuron crosses threshold iff its peak (closed form) reaches it, and the crossing lies where
``V`` rises monotonically: bisection then Newton find it to the float type's precision. The
network jumps from event to event (the earliest crossing of any neuron or the next input
spike), at most ``max_events`` network spikes per example (a fixed count, so it jits).
Spikes beyond that budget are *lost*: the trace's ``overflow`` flag is set and objectives
return NaN for that example (never a silently wrong value).

**Backward** (:func:`adjoint`): the sensitivities ``a_V = dL/dV(t)``, ``a_I = dL/dI(t)``
(the paper's adjoints are ``lambda_V = -a_V / tau_mem``, ``lambda_I = -a_I / tau_syn``) are
carried backward in closed form between events (the transposed propagator) and jump at each
spike of neuron ``n`` (implicit function theorem on ``V_n(t_k) = threshold``)::

    a_V,n(t_k^-) = -[ sum_j w_{n->j} (a_I,j / tau_syn - a_V,j / tau_mem) (j != n)
                      + a_I,n w_{n->n} / tau_syn - a_V,n I_n(t_k^+) / tau_mem
                      + dl/dt_k ] / (dV_n/dt)(t_k^-)

all right-hand values taken at ``t_k^+``; the other components are continuous. The weight
gradient is ``dL/dw_{i->j} = sum over spikes k of i of a_I,j(t_k) = -tau_syn sum_k
lambda_I,j(t_k)`` (eq. of the paper). Memory: O(1) per event (its time, source, the spiking
neuron's dV/dt and current), independent of a time grid.

:meth:`EventNetwork.simulate_grid` runs the same network on a fixed time grid (exact
propagation over each step, threshold tested at the step's end, spikes delivered at the
step's end): the network that surrogate-gradient BPTT trains.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.sim.surrogates import AbstractSurrogate, spike_with_surrogate

__all__ = ["EventNetwork", "EventTrace", "GridTrace", "adjoint", "event_params"]


class EventTrace(eqx.Module):
    """One example's event-driven run (``K = max_events + n_in + 1`` event slots; unused
    slots have ``used`` False). Times in ms.

    Attributes:
        time: ``(K,)`` event times (``duration`` for unused slots).
        src: ``(K,)`` the event's source: ``i < n_in`` an input, ``n_in + n`` neuron ``n``
            (neurons numbered layer after layer).
        used: ``(K,)`` whether the slot holds an event.
        span: ``(K,)`` length of the interval before slot ``k``'s event (ms).
        vdot: ``(K,)`` dV/dt of the spiking neuron just before its spike (1/ms; 0 for
            inputs).
        i_post: ``(K,)`` its current just after the spike (reset and self-recurrence).
        first_time: ``(n_out,)`` first spike time of each output neuron (``duration`` if none).
        first_event: ``(n_out,)`` slot of that spike (-1 if none).
        vmax: ``(n_out,)`` maximum over ``[0, duration]`` of each output potential.
        vmax_slot, vmax_offset: the interval (slot) and the offset (ms) in it of that maximum.
        vmax_vdot: dV/dt just before the maximum where it sits at the end of the interval
            (a kink made by an event), else 0.
        counts: ``(N,)`` spikes per neuron.
        overflow: True if more than ``max_events`` spikes would have occurred (spikes lost).
        slots: number of slots the run used (the last one ends the window).
    """

    time: Array
    src: Array
    used: Array
    span: Array
    vdot: Array
    i_post: Array
    first_time: Array
    first_event: Array
    vmax: Array
    vmax_slot: Array
    vmax_offset: Array
    vmax_vdot: Array
    counts: Array
    overflow: Array
    slots: Array


class GridTrace(eqx.Module):
    """One example on the time grid: first spike times and maximum potential of the output
    layer (``(n_out,)``), spike counts ``(N,)``; ``overflow`` is always False."""

    first_time: Array
    vmax: Array
    counts: Array
    overflow: Array


def event_params(
    sizes: tuple[int, ...], recurrent: tuple[bool, ...], *, key: Array,
    dtype: Any = jnp.float32, gain: float = 1.0,
) -> tuple[dict[str, Array], ...]:  # fmt: skip
    """Gaussian initial weights ``N(0, (gain / sqrt(n_in))^2)`` (``weight``: ``(n_in,
    n_out)``; ``recurrent``: ``(n, n)`` scaled by 0.5 where the layer has one)."""
    out = []
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        p = {"weight": gain / np.sqrt(a) * jax.random.normal(keys[2 * i], (a, b), dtype)}
        if recurrent[i]:
            p["recurrent"] = (
                0.5 * gain / np.sqrt(b) * jax.random.normal(keys[2 * i + 1], (b, b), dtype)
            )
        out.append(p)
    return tuple(out)


class EventNetwork(eqx.Module):
    """A feed-forward (optionally recurrent per layer) LIF network with exponential current
    synapses, simulated event by event. Parameters are passed in (see :func:`event_params`):
    a tuple with one dict per layer, ``{"weight": (n_in, n_out)}`` plus ``"recurrent": (n,
    n)`` (``R[a, b]``: from neuron a to neuron b) where ``recurrent[l]``.

    Attributes:
        sizes: ``(n_in, n_1, ..., n_out)``.
        recurrent: one flag per layer.
        tau_mem, tau_syn: membrane and synaptic time constants (ms), unequal.
        threshold: firing threshold (dimensionless; reset to 0).
        duration: simulated window ``[0, duration]`` (ms).
        max_events: network spikes per example the simulation has room for.
        spiking_output: False: the output layer integrates without threshold (the readout of
            the max-voltage loss); True: it spikes (time-to-first-spike losses).
        bisections, newton: root-finding iterations per crossing.
    """

    sizes: tuple[int, ...] = eqx.field(static=True)
    recurrent: tuple[bool, ...] = eqx.field(static=True)
    tau_mem: float = eqx.field(static=True, default=20.0)
    tau_syn: float = eqx.field(static=True, default=5.0)
    threshold: float = eqx.field(static=True, default=1.0)
    duration: float = eqx.field(static=True, default=30.0)
    max_events: int = eqx.field(static=True, default=256)
    spiking_output: bool = eqx.field(static=True, default=True)
    bisections: int = eqx.field(static=True, default=12)
    newton: int = eqx.field(static=True, default=4)

    def __check_init__(self):
        if len(self.sizes) < 2 or not all(isinstance(s, int) and s >= 1 for s in self.sizes):
            raise ValueError(
                f"EventNetwork.sizes must be (n_in, ..., n_out) positive ints, got {self.sizes!r}."
            )
        if len(self.recurrent) != len(self.sizes) - 1:
            raise ValueError(
                f"EventNetwork.recurrent needs one flag per layer ({len(self.sizes) - 1}), got "
                f"{self.recurrent!r}."
            )
        for name in ("tau_mem", "tau_syn", "threshold", "duration"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 < v < np.inf):
                raise ValueError(f"EventNetwork.{name} must be a positive number, got {v!r}.")
        if abs(self.tau_mem - self.tau_syn) < 1e-6 * self.tau_mem:
            raise ValueError(
                f"EventNetwork.tau_mem = {self.tau_mem} equals tau_syn = {self.tau_syn}; the "
                "closed-form solution needs them unequal (e.g. tau_mem=20.0, tau_syn=5.0)."
            )
        if not (isinstance(self.max_events, int) and self.max_events >= 1):
            raise ValueError(
                f"EventNetwork.max_events must be an int >= 1, got {self.max_events!r}."
            )

    # --- structure ------------------------------------------------------------------------

    @property
    def n_in(self) -> int:
        return self.sizes[0]

    @property
    def n_neurons(self) -> int:
        return int(sum(self.sizes[1:]))

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    def _offsets(self) -> list[int]:
        return [int(x) for x in np.cumsum((0,) + self.sizes[1:])]

    def check_params(self, params: Any) -> None:
        """ValueError naming the layer and key if ``params`` do not fit this network."""
        if not isinstance(params, tuple | list) or len(params) != len(self.sizes) - 1:
            raise ValueError(
                f"params must be a tuple of {len(self.sizes) - 1} dicts (one per layer), got "
                f"{type(params).__name__}."
            )
        for i, p in enumerate(params):
            a, b = self.sizes[i], self.sizes[i + 1]
            want = {"weight": (a, b)} | ({"recurrent": (b, b)} if self.recurrent[i] else {})
            got = {k: tuple(np.shape(v)) for k, v in p.items()}
            if got != want:
                raise ValueError(f"params[{i}] must have shapes {want}, got {got}.")

    def full_weights(self, params: Any) -> Array:
        """All weights as one ``(n_in + N, N)`` matrix: row = source (inputs, then neurons
        layer after layer), column = target neuron."""
        n, off = self.n_neurons, self._offsets()
        dtype = params[0]["weight"].dtype
        w = jnp.zeros((self.n_in + n, n), dtype)
        for i, p in enumerate(params):
            rows = 0 if i == 0 else self.n_in + off[i - 1]
            cols = off[i]
            w = w.at[rows : rows + self.sizes[i], cols : cols + self.sizes[i + 1]].set(p["weight"])
            if self.recurrent[i]:
                r0 = self.n_in + off[i]
                w = w.at[r0 : r0 + self.sizes[i + 1], cols : cols + self.sizes[i + 1]].set(
                    p["recurrent"]
                )
        return w

    def split_weights(self, full: Array) -> tuple[dict[str, Array], ...]:
        """The inverse of :meth:`full_weights` (blocks of a gradient of the full matrix)."""
        off, out = self._offsets(), []
        for i in range(len(self.sizes) - 1):
            rows = 0 if i == 0 else self.n_in + off[i - 1]
            cols = off[i]
            p = {"weight": full[rows : rows + self.sizes[i], cols : cols + self.sizes[i + 1]]}
            if self.recurrent[i]:
                r0 = self.n_in + off[i]
                p["recurrent"] = full[r0 : r0 + self.sizes[i + 1], cols : cols + self.sizes[i + 1]]
            out.append(p)
        return tuple(out)

    def _spiking(self) -> np.ndarray:
        s = np.ones(self.n_neurons, bool)
        if not self.spiking_output:
            s[-self.n_out :] = False
        return s

    # --- closed form ----------------------------------------------------------------------

    def _amp(self) -> float:
        return self.tau_syn / (self.tau_syn - self.tau_mem)

    def propagate(self, v: Array, i: Array, u: Array) -> tuple[Array, Array]:
        """State after ``u`` ms without events."""
        em, es = jnp.exp(-u / self.tau_mem), jnp.exp(-u / self.tau_syn)
        return v * em + self._amp() * i * (es - em), i * es

    def _peak(self, v: Array, i: Array) -> tuple[Array, Array]:
        """(offset of the maximum of V ahead, whether V rises now and has one)."""
        a = self._amp()
        beta = a * i
        alpha = v - beta
        vdot0 = (i - v) / self.tau_mem
        ratio = -beta * self.tau_mem / jnp.where(alpha == 0, 1.0, alpha * self.tau_syn)
        rate = 1.0 / self.tau_syn - 1.0 / self.tau_mem
        upeak = jnp.log(jnp.where(ratio > 0, ratio, 1.0)) / rate
        ok = (vdot0 > 0) & (ratio > 0) & (alpha != 0) & (upeak > 0)
        return jnp.where(ok, upeak, jnp.inf), ok

    def crossing(self, v: Array, i: Array) -> Array:
        """Offset (ms) of each neuron's next threshold crossing without further input (inf
        where it does not cross)."""
        upeak, ok = self._peak(v, i)
        hi0 = jnp.where(ok, upeak, 1.0)
        vpeak = self.propagate(v, i, hi0)[0]
        crosses = ok & (vpeak >= self.threshold) & (v < self.threshold)
        lo, hi = jnp.zeros_like(v), hi0

        def bis(_, lh):
            lo, hi = lh
            mid = 0.5 * (lo + hi)
            above = self.propagate(v, i, mid)[0] >= self.threshold
            return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

        lo, hi = jax.lax.fori_loop(0, self.bisections, bis, (lo, hi))

        def newton(_, u):
            vu, iu = self.propagate(v, i, u)
            d = (iu - vu) / self.tau_mem
            step = (vu - self.threshold) / jnp.where(d > 0, d, 1.0)
            new = u - step
            return jnp.where((new >= lo) & (new <= hi) & (d > 0), new, 0.5 * (lo + hi))

        u = jax.lax.fori_loop(0, self.newton, newton, 0.5 * (lo + hi))
        return jnp.where(crosses, u, jnp.inf)

    def _segment_max(self, v: Array, i: Array, span: Array) -> tuple[Array, Array, Array]:
        """Max of V over ``[0, span]`` of each neuron: (value, offset, dV/dt just before the
        end where the max is the end point)."""
        upeak, ok = self._peak(v, i)
        inside = ok & (upeak < span)
        u_in = jnp.where(inside, upeak, 0.0)
        v_in = self.propagate(v, i, u_in)[0]
        v_end, i_end = self.propagate(v, i, span)
        cands = jnp.stack([v, jnp.where(inside, v_in, -jnp.inf), v_end])
        which = jnp.argmax(cands, axis=0)
        value = jnp.max(cands, axis=0)
        offset = jnp.where(which == 1, u_in, jnp.where(which == 2, span, 0.0))
        vdot_end = jnp.where(which == 2, (i_end - v_end) / self.tau_mem, 0.0)
        return value, offset, vdot_end

    # --- event-driven forward -------------------------------------------------------------

    def simulate(self, params: Any, input_times: Array) -> EventTrace:
        """Run one example; ``input_times`` ``(n_in,)`` one spike per input (ms, >= 0; ``inf``
        or beyond ``duration``: no spike). A ``lax.while_loop``: forward-mode and plain
        evaluation work, reverse-mode autodiff does not (that is what :func:`adjoint` is for)."""
        dtype = params[0]["weight"].dtype
        w = self.full_weights(params)
        n, n_in, n_out = self.n_neurons, self.n_in, self.n_out
        k_slots = self.max_events + n_in + 1
        spiking = jnp.asarray(self._spiking())
        in_t = jnp.asarray(input_times, dtype)
        order = jnp.argsort(in_t).astype(jnp.int32)
        in_sorted = in_t[order]
        big = jnp.asarray(self.duration, dtype)
        out0 = n - n_out

        carry0 = dict(
            t=jnp.zeros((), dtype), v=jnp.zeros(n, dtype), i=jnp.zeros(n, dtype),
            ptr=jnp.zeros((), jnp.int32), done=jnp.zeros((), bool),
            counts=jnp.zeros(n, jnp.int32), spikes=jnp.zeros((), jnp.int32),
            first_time=jnp.full(n_out, big), first_event=jnp.full(n_out, -1, jnp.int32),
            vmax=jnp.zeros(n_out, dtype), vmax_slot=jnp.zeros(n_out, jnp.int32),
            vmax_offset=jnp.zeros(n_out, dtype), vmax_vdot=jnp.zeros(n_out, dtype),
        )  # fmt: skip

        def body(c, k):
            t, v, i = c["t"], c["v"], c["i"]
            u = jnp.where(spiking, self.crossing(v, i), jnp.inf)
            nrn = jnp.argmin(u).astype(jnp.int32)
            t_spk = t + u[nrn]
            t_inp = jnp.where(c["ptr"] < n_in, in_sorted[jnp.minimum(c["ptr"], n_in - 1)], jnp.inf)
            is_input = t_inp <= t_spk
            t_ev = jnp.minimum(t_inp, t_spk)
            valid = (t_ev <= self.duration) & ~c["done"]
            t_end = jnp.where(valid, t_ev, jnp.maximum(t, big))
            span = jnp.where(c["done"], 0.0, t_end - t)
            # Max of the output potentials over this interval.
            mv, mo, md = self._segment_max(v[out0:], i[out0:], span)
            better = (mv > c["vmax"]) & ~c["done"]
            vmax = jnp.where(better, mv, c["vmax"])
            vmax_slot = jnp.where(better, k, c["vmax_slot"])
            vmax_offset = jnp.where(better, mo, c["vmax_offset"])
            vmax_vdot = jnp.where(better, md, c["vmax_vdot"])
            v1, i1 = self.propagate(v, i, span)
            src = jnp.where(is_input, order[jnp.minimum(c["ptr"], n_in - 1)], n_in + nrn)
            vdot = jnp.where(is_input, 0.0, (i1[nrn] - v1[nrn]) / self.tau_mem)
            v2 = jnp.where(valid & ~is_input, v1.at[nrn].set(0.0), v1)
            i2 = jnp.where(valid, i1 + w[src], i1)
            spike = valid & ~is_input
            onehot = jnp.arange(n, dtype=jnp.int32) == nrn
            is_out = spike & (nrn >= out0)
            o = jnp.maximum(nrn - out0, 0)
            first = is_out & (c["first_event"][o] < 0)
            new = dict(
                t=t_end, v=v2, i=i2, ptr=c["ptr"] + (valid & is_input).astype(jnp.int32),
                done=c["done"] | ~valid,
                counts=c["counts"] + (spike & onehot).astype(jnp.int32),
                spikes=c["spikes"] + spike.astype(jnp.int32),
                first_time=jnp.where(first, c["first_time"].at[o].set(t_ev), c["first_time"]),
                first_event=jnp.where(first, c["first_event"].at[o].set(k), c["first_event"]),
                vmax=vmax, vmax_slot=vmax_slot, vmax_offset=vmax_offset, vmax_vdot=vmax_vdot,
            )  # fmt: skip
            rec = (t_end, jnp.where(valid, src, 0), valid, span,
                   jnp.where(spike, vdot, 0.0), jnp.where(spike, i2[nrn], 0.0))  # fmt: skip
            return new, rec

        # A while loop, not a scan: it stops at the window's end (under vmap, when every
        # example of the batch has), so the cost follows the spikes, not the budget.
        records0 = (
            jnp.full(k_slots, big), jnp.zeros(k_slots, jnp.int32), jnp.zeros(k_slots, bool),
            jnp.zeros(k_slots, dtype), jnp.zeros(k_slots, dtype), jnp.zeros(k_slots, dtype),
        )  # fmt: skip

        def step(state):
            k, c, records = state
            c, rec = body(c, k)
            return k + 1, c, tuple(r.at[k].set(v) for r, v in zip(records, rec, strict=True))

        k, c, (time, src, used, span, vdot, i_post) = jax.lax.while_loop(
            lambda s: (s[0] < k_slots) & ~s[1]["done"], step, (jnp.int32(0), carry0, records0)
        )
        # A spike in the last slot, or any event still pending: the budget ran out.
        overflow = ~c["done"] | (c["spikes"] > self.max_events)
        return EventTrace(
            time, src, used, span, vdot, i_post, c["first_time"], c["first_event"], c["vmax"],
            c["vmax_slot"], c["vmax_offset"], c["vmax_vdot"], c["counts"], overflow, k,
        )  # fmt: skip

    # --- time grid (surrogate gradients) --------------------------------------------------

    def simulate_grid(
        self, params: Any, input_times: Array, *, dt: float,
        surrogate: AbstractSurrogate | None = None,
    ) -> GridTrace:  # fmt: skip
        """The same network on a grid of ``dt`` ms: exact propagation over each step, an
        input spike delivered at the end of the step it falls in, threshold tested at the
        end of each step (spikes delivered at once). ``surrogate``: the spike's derivative
        on the backward pass (None: zero). First spike times are step ends (``duration`` if
        none), written so that a surrogate spike carries a derivative into them."""
        dtype = params[0]["weight"].dtype
        w = self.full_weights(params)
        n, n_in, n_out = self.n_neurons, self.n_in, self.n_out
        steps = max(1, int(round(self.duration / dt)))
        in_t = jnp.asarray(input_times, dtype)
        in_step = jnp.floor(in_t / dt)
        spiking = jnp.asarray(self._spiking(), dtype)
        em, es = np.exp(-dt / self.tau_mem), np.exp(-dt / self.tau_syn)
        a = self._amp()

        def body(c, s):
            v, i, alive, first, vmax = c
            v = v * em + a * i * (es - em)
            i = i * es
            x = (in_step == s).astype(dtype)
            i = i + x @ w[:n_in]
            exact = (v >= self.threshold).astype(dtype) * spiking
            z = spike_with_surrogate(v - self.threshold, exact, surrogate) * spiking
            vmax = jnp.maximum(vmax, v[n - n_out :])
            v = v * (1 - z)
            i = i + z @ w[n_in:]
            zo = z[n - n_out :]
            t_end = (s + 1).astype(dtype) * dt
            first = first + alive * zo * t_end
            alive = alive * (1 - zo)
            return (v, i, alive, first, vmax), exact

        c0 = (jnp.zeros(n, dtype), jnp.zeros(n, dtype), jnp.ones(n_out, dtype),
              jnp.zeros(n_out, dtype), jnp.zeros(n_out, dtype))  # fmt: skip
        (v, i, alive, first, vmax), spikes = jax.lax.scan(body, c0, jnp.arange(steps, dtype=dtype))
        first = first + alive * jnp.asarray(self.duration, dtype)
        counts = spikes.sum(0).astype(jnp.int32)
        return GridTrace(first, vmax, counts, jnp.zeros((), bool))


# --- the adjoint system ---------------------------------------------------------------------


def adjoint(
    net: EventNetwork, params: Any, trace: EventTrace, g_first: Array, g_vmax: Array
) -> tuple[dict[str, Array], ...]:
    """EventProp's backward pass for one example: the gradient of a loss whose derivatives
    with respect to the output layer's first spike times are ``g_first`` ``(n_out,)`` and
    with respect to its maximum potentials ``g_vmax`` ``(n_out,)``. Returns a pytree like
    ``params``. Output neurons that never spiked have no event to carry ``g_first``: that
    part of their derivative is zero (a spike that does not exist has no time to move)."""
    dtype = params[0]["weight"].dtype
    w = net.full_weights(params)
    n, n_in, n_out = net.n_neurons, net.n_in, net.n_out
    out0 = n - n_out
    a = net._amp()
    tm, ts = net.tau_mem, net.tau_syn

    def body(c):
        k, a_v, a_i, grad = c
        valid = trace.used[k]
        src = trace.src[k]
        nrn = jnp.maximum(src - n_in, 0)
        is_spike = valid & (src >= n_in)
        # Weight gradient: the jump of the targets' currents by w_{src -> j}.
        # Mask the row added, not the whole gradient: a where over grad copies it per event.
        grad = grad.at[src].add(jnp.where(valid, a_i, 0.0))
        # Time derivative of the loss at this event: first-spike loss, and the maximum of an
        # output potential that sits at this event (a kink).
        o = nrn - out0
        first_here = is_spike & (o >= 0) & (trace.first_event[jnp.maximum(o, 0)] == k)
        dl_dt = jnp.where(first_here, g_first[jnp.maximum(o, 0)], 0.0)
        kink = (trace.vmax_slot == k) & (trace.vmax_vdot != 0)
        dl_dt = dl_dt + jnp.where(
            is_spike, jnp.sum(jnp.where(kink, g_vmax * trace.vmax_vdot, 0.0)), 0.0
        )
        row = w[src]
        bracket = (
            jnp.sum(row * (a_i / ts - a_v / tm)) + a_v[nrn] * row[nrn] / tm
            - a_v[nrn] * trace.i_post[k] / tm + dl_dt
        )  # fmt: skip
        vdot = jnp.where(is_spike, trace.vdot[k], 1.0)
        a_v = jnp.where(is_spike, a_v.at[nrn].set(-bracket / vdot), a_v)
        # Back across the interval before this event: the transposed propagator.
        span = trace.span[k]
        em, es = jnp.exp(-span / tm), jnp.exp(-span / ts)
        a_v, a_i = a_v * em, a_i * es + a * (es - em) * a_v
        # Maximum potentials inside this interval: dVmax/d(state at its start).
        here = trace.vmax_slot == k
        u = trace.vmax_offset
        emu, esu = jnp.exp(-u / tm), jnp.exp(-u / ts)
        gv = jnp.where(here, g_vmax, 0.0)
        a_v = a_v.at[out0:].add(gv * emu)
        a_i = a_i.at[out0:].add(gv * a * (esu - emu))
        return k - 1, a_v, a_i, grad

    # From the last slot the forward run used back to the first (a while loop: under vmap
    # it runs as long as the busiest example of the batch).
    k0 = jnp.asarray(trace.slots, jnp.int32) - 1
    c0 = (k0, jnp.zeros(n, dtype), jnp.zeros(n, dtype), jnp.zeros((n_in + n, n), dtype))
    _, _, _, grad = jax.lax.while_loop(lambda c: c[0] >= 0, body, c0)
    return net.split_weights(grad)
