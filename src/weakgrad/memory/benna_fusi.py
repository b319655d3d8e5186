"""The Benna-Fusi complex synapse: a chain of ``m`` coupled variables, the first one the
synaptic weight, storing a stream of random +/-1 memories at ``N`` synapses.

Benna & Fusi (2016), "Computational principles of synaptic memory consolidation", Nat.
Neurosci. 19:1697-1706 (seed 004, "Optimal synaptic memory consolidation"). Variable
``u_k`` (k = 1..m, dimensionless) is the level of liquid in a beaker of capacity ``C_k``
joined to its neighbours by tubes of conductance ``g_{k,k+1}`` (per unit time)::

    C_k du_k/dt = g_{k-1,k} (u_{k-1} - u_k) + g_{k,k+1} (u_{k+1} - u_k),

with no ``k = 0`` term, ``u_{m+1} = 0`` (the last variable leaks to 0 through
``g_{m,m+1}``) and the plasticity events entering the first variable: an event
``Delta w = +/-1`` at time ``t0`` adds ``+/-1 / C_1`` to ``u_1`` (one unit of charge). The
weight is ``w = u_1``. The paper's chain has geometric parameters, ``C_k = 2^(k-1)``,
``g_{k,k+1} = 2^(-k-2)`` (:meth:`BennaFusiChain.geometric`): a discretised heat equation
with capacity growing and conductivity shrinking exponentially along the chain, whose
memory trace decays as ``1/sqrt(t)`` up to the chain's slowest time scale (``~ 4^m``).
One variable (``m = 1``) is the exponentially decaying synapse
(:meth:`BennaFusiChain.exponential`).

Time is counted in memories: one memory (an independent, equiprobable +/-1 event at every
synapse) arrives per unit of time, at integer times. A memory of age ``t`` is read right
after the memory of time ``t`` arrived.

The model is linear, so everything the study needs has a closed form (computed on the host
in float64: a 16-variable chain's slowest mode is ten orders of magnitude slower than its
fastest, beyond a float32 eigen solver):

- the memory trace ``r(t)`` (the weight ``t`` after one unit event, the *signal*
  ``S(t) = <(1/N) sum_a w_a(t) Delta w_a(0)>``) is a mixture of decaying exponentials
  ``sum_j c_j exp(-lambda_j t)`` over the chain's modes (:meth:`BennaFusiChain.modes`);
- the *noise* (standard deviation of that overlap) comes from every other memory:
  ``Noise(t)^2 = (sum_{k=0}^{K} r(k)^2 - r(t)^2) / N`` where ``K = t + past`` and
  ``past`` memories came before the tracked one (``None``: infinitely many, the steady
  state of the paper); the geometric sums are closed forms over pairs of modes;
- ``SNR(t) = S(t) / Noise(t)``, and the *memory capacity* (the age at which SNR falls to
  1) solves ``r(t)^2 = sum_k r(k)^2 / (N + 1)`` in the steady state (:func:`capacity`).

:func:`simulate` runs the stochastic version (``N`` synapses x ``trials`` independent
runs, one ``jax.lax.scan``) to check the closed forms against.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = [
    "BennaFusiChain",
    "MemorySimulation",
    "memory_signal",
    "memory_noise",
    "snr",
    "trace_power",
    "capacity",
    "exponential_capacity",
    "fit_exponent",
    "simulate",
]


def _concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


class BennaFusiChain(eqx.Module):
    """A chain of ``m`` variables: ``capacities[k-1] = C_k`` and
    ``conductances[k-1] = g_{k,k+1}`` (the last is the leak of ``u_m`` to 0), both
    positive, in units of one event's charge and per unit of time (one memory per unit).

    Build the paper's chain with :meth:`geometric`, the single-variable exponential
    synapse with :meth:`exponential`."""

    capacities: Array
    conductances: Array

    def __init__(self, capacities: Any, conductances: Any, dtype: Any = jnp.float32):
        self.capacities = jnp.asarray(capacities, dtype)
        self.conductances = jnp.asarray(conductances, dtype)

    def __check_init__(self):
        c, g = self.capacities, self.conductances
        if c.ndim != 1 or c.shape[0] < 1:
            raise ValueError(
                f"BennaFusiChain.capacities must be a 1-D array of m >= 1 values, got shape "
                f"{c.shape}."
            )
        if g.shape != c.shape:
            raise ValueError(
                f"BennaFusiChain.conductances must have one value per variable (g_(k,k+1), the "
                f"last one the leak), shape {c.shape}; got shape {g.shape}."
            )
        for name, v in (("capacities", c), ("conductances", g)):
            if _concrete(v):
                a = np.asarray(v, np.float64)
                if not np.all(np.isfinite(a)) or np.any(a <= 0):
                    raise ValueError(
                        f"BennaFusiChain.{name} must be finite and > 0, got {a.tolist()}."
                    )

    @classmethod
    def geometric(
        cls,
        m: int,
        *,
        ratio: float = 2.0,
        first_conductance: float = 0.125,
        dtype: Any = jnp.float32,
    ) -> BennaFusiChain:
        """The paper's chain: ``C_k = ratio^(k-1)`` and
        ``g_{k,k+1} = first_conductance * ratio^-(k-1)`` for ``k = 1..m``; the defaults
        (2, 1/8) give ``C_k = 2^(k-1)``, ``g_{k,k+1} = 2^(-k-2)``. Each variable is about
        ``ratio^2`` times slower than the one before."""
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"BennaFusiChain.geometric: m must be an integer >= 1, got {m!r}.")
        if not (math.isfinite(ratio) and ratio > 0):
            raise ValueError(
                f"BennaFusiChain.geometric: ratio must be finite and > 0, got {ratio}."
            )
        if not (math.isfinite(first_conductance) and first_conductance > 0):
            raise ValueError(
                "BennaFusiChain.geometric: first_conductance must be finite and > 0, got "
                f"{first_conductance}."
            )
        k = np.arange(int(m), dtype=np.float64)
        return cls(ratio**k, first_conductance * ratio ** (-k), dtype)

    @classmethod
    def exponential(
        cls, tau: float, *, capacity: float = 1.0, dtype: Any = jnp.float32
    ) -> BennaFusiChain:
        """One variable leaking with time constant ``tau`` (memories): ``C = capacity``,
        ``g = capacity / tau``; its trace is ``r(t) = exp(-t / tau) / capacity``."""
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"BennaFusiChain.exponential: tau must be finite and > 0, got {tau}.")
        return cls([capacity], [capacity / tau], dtype)

    @property
    def size(self) -> int:
        """``m``, the number of variables."""
        return int(self.capacities.shape[0])

    def rate_matrix(self) -> Array:
        """``A`` (``m x m``, per unit time) of ``du/dt = A u``: ``A = -C^-1 L`` with ``L`` the
        chain's weighted Laplacian plus the leak of the last variable."""
        c, g = self.capacities, self.conductances
        inner = g[:-1]  # g_{k,k+1} between variables k and k+1
        diag = g + jnp.concatenate([jnp.zeros((1,), g.dtype), inner])  # g_{k-1,k} + g_{k,k+1}
        lap = jnp.diag(diag) - jnp.diag(inner, 1) - jnp.diag(inner, -1)
        return -lap / c[:, None]

    def _symmetric(self) -> tuple[np.ndarray, np.ndarray]:
        c = np.asarray(self.capacities, np.float64)
        g = np.asarray(self.conductances, np.float64)
        inner = g[:-1]
        lap = np.diag(g + np.concatenate([[0.0], inner])) - np.diag(inner, 1) - np.diag(inner, -1)
        s = 1.0 / np.sqrt(c)
        return s[:, None] * lap * s[None, :], c

    def modes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rates, weights)``, float64 ``(m,)`` each: the trace is
        ``r(t) = sum_j weights[j] exp(-rates[j] t)``.

        ``A`` is similar to the symmetric ``S = C^-1/2 L C^-1/2 = V diag(rates) V^T``, so
        ``exp(A t) = C^-1/2 V exp(-rates t) V^T C^1/2`` and the weight's response to a unit
        charge in ``u_1`` has ``weights[j] = V[0, j]^2 / C_1`` (positive, summing to
        ``1 / C_1``): ``r`` is positive and decreasing."""
        sym, c = self._symmetric()
        rates, v = np.linalg.eigh(sym)
        return rates, v[0] ** 2 / c[0]

    def kernel(self, t: Any) -> np.ndarray:
        """The memory trace ``r(t)`` (float64, the shape of ``t``; ``t >= 0`` in memories):
        the weight ``t`` after a unit event in a chain at rest."""
        t = _times(t)
        rates, weights = self.modes()
        return np.exp(-t[..., None] * rates) @ weights

    def step_matrix(self, dt: float = 1.0) -> Array:
        """``exp(A dt)`` in the chain's dtype (computed from the float64 modes)."""
        sym, c = self._symmetric()
        rates, v = np.linalg.eigh(sym)
        e = (v * np.exp(-rates * dt)) @ v.T
        e = (1.0 / np.sqrt(c))[:, None] * e * np.sqrt(c)[None, :]
        return jnp.asarray(e, self.capacities.dtype)


def _times(t: Any) -> np.ndarray:
    t = np.asarray(t, np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t (the memory's age, in memories) must be finite and >= 0.")
    return t


def _check_n(n_synapses: Any) -> np.ndarray:
    n = np.asarray(n_synapses, np.float64)
    if not np.all(np.isfinite(n)) or np.any(n < 1):
        raise ValueError(f"n_synapses must be >= 1 (the number of synapses N), got {n_synapses}.")
    return n


def _check_past(past: Any) -> None:
    if past is not None and (not math.isfinite(past) or past < 0):
        raise ValueError(
            f"past (memories stored before the tracked one) must be >= 0, or None for the "
            f"steady state; got {past}."
        )


def trace_power(chain: BennaFusiChain, last: Any = None) -> np.ndarray:
    """``sum_{k=0}^{last} r(k)^2`` (float64, the shape of ``last``), ``last=None``: the sum
    to infinity. Closed form: ``sum_ij c_i c_j (1 - q_ij^(last+1)) / (1 - q_ij)`` with
    ``q_ij = exp(-(rate_i + rate_j))``."""
    rates, weights = chain.modes()
    a = rates[:, None] + rates[None, :]
    ww = weights[:, None] * weights[None, :]
    denom = -np.expm1(-a)
    if last is None:
        return np.asarray(np.sum(ww / denom))
    last = _times(last)
    num = -np.expm1(-a * (np.floor(last)[..., None, None] + 1.0))
    return np.sum(ww * num / denom, axis=(-2, -1))


def memory_signal(chain: BennaFusiChain, t: Any) -> np.ndarray:
    """``S(t) = r(t)``: the mean overlap of the weights with a memory of age ``t``."""
    return chain.kernel(t)


def memory_noise(
    chain: BennaFusiChain, t: Any, n_synapses: Any, *, past: float | None = None
) -> np.ndarray:
    """Standard deviation of the overlap ``(1/N) sum_a w_a(t) Delta w_a(0)`` over the other
    memories' events: ``sqrt((sum_{k=0}^{t+past} r(k)^2 - r(t)^2) / N)``. ``past``: how
    many memories came before the tracked one (``None``: infinitely many, steady state).
    Broadcasts ``t`` against ``n_synapses``."""
    _check_past(past)
    t = _times(t)
    n = _check_n(n_synapses)
    total = trace_power(chain, None if past is None else t + past)
    var = np.maximum(total - chain.kernel(t) ** 2, 0.0)
    return np.sqrt(var / n)


def snr(chain: BennaFusiChain, t: Any, n_synapses: Any, *, past: float | None = None) -> np.ndarray:
    """``S(t) / Noise(t)`` (see :func:`memory_signal`, :func:`memory_noise`)."""
    return memory_signal(chain, t) / memory_noise(chain, t, n_synapses, past=past)


def capacity(chain: BennaFusiChain, n_synapses: Any, *, threshold: float = 1.0) -> np.ndarray:
    """Memory capacity: the age (memories, continuous) at which the steady-state SNR falls
    to ``threshold`` (1 in the paper), for each ``N`` in ``n_synapses``; 0 where the SNR
    starts below it.

    ``SNR(t) = threshold`` is ``r(t)^2 = P / (N / threshold^2 + 1)`` with
    ``P = sum_k r(k)^2``; ``r`` decreases, so bisection in ``log(1 + t)`` finds it."""
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"capacity: threshold must be finite and > 0, got {threshold}.")
    n = _check_n(n_synapses)
    target = np.sqrt(trace_power(chain) / (n / threshold**2 + 1.0))
    rates, weights = chain.modes()

    def r(t):
        return np.exp(-t[..., None] * rates) @ weights

    lo = np.zeros_like(target)
    hi = np.full_like(target, 1.0)
    for _ in range(200):  # grow hi until r(hi) < target (r -> 0: ends)
        short = r(hi) >= target
        if not np.any(short):
            break
        hi = np.where(short, hi * 4.0, hi)
    for _ in range(100):
        mid = np.expm1(0.5 * (np.log1p(lo) + np.log1p(hi)))
        above = r(mid) >= target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(r(np.zeros_like(target)) >= target, 0.5 * (lo + hi), 0.0)


def exponential_capacity(tau: Any, n_synapses: Any) -> np.ndarray:
    """Closed form of :func:`capacity` for the exponential synapse
    (:meth:`BennaFusiChain.exponential`): ``SNR(t)^2 = N exp(-2t/tau) /
    (1 / (1 - exp(-2/tau)) - exp(-2t/tau))``, so ``SNR = 1`` at
    ``t = (tau / 2) log((N + 1)(1 - exp(-2/tau)))`` (0 if negative)."""
    tau = np.asarray(tau, np.float64)
    if not np.all(np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"exponential_capacity: tau must be finite and > 0, got {tau}.")
    n = _check_n(n_synapses)
    return np.maximum(0.5 * tau * np.log((n + 1.0) * -np.expm1(-2.0 / tau)), 0.0)


def fit_exponent(t: Any, y: Any, t_min: float, t_max: float) -> tuple[float, float]:
    """Least-squares line of ``log y`` against ``log t`` over ``t_min <= t <= t_max``:
    ``(exponent, prefactor)`` of ``y ~ prefactor * t^exponent``. Needs at least 3 points
    with ``t > 0`` and ``y > 0`` in the range."""
    t, y = np.asarray(t, np.float64), np.asarray(y, np.float64)
    if t.shape != y.shape or t.ndim != 1:
        raise ValueError(
            f"fit_exponent: t and y must be 1-D of one length, got {t.shape}, {y.shape}."
        )
    if not (0 < t_min < t_max):
        raise ValueError(f"fit_exponent: need 0 < t_min < t_max, got {t_min}, {t_max}.")
    keep = (t >= t_min) & (t <= t_max) & (y > 0) & np.isfinite(y)
    if keep.sum() < 3:
        raise ValueError(
            f"fit_exponent: fewer than 3 points with y > 0 in [{t_min}, {t_max}]; widen the "
            "range or sample t more finely."
        )
    slope, icpt = np.polyfit(np.log(t[keep]), np.log(y[keep]), 1)
    return float(slope), float(np.exp(icpt))


@dataclasses.dataclass(frozen=True)
class MemorySimulation:
    """What :func:`simulate` returns. ``overlaps[i, t]``: run ``i``'s overlap
    ``(1/N) sum_a w_a(t) Delta w_a(0)`` with the tracked memory at age ``t`` (``t = 0..steps``);
    ``past``: memories stored before the tracked one (burn-in)."""

    overlaps: np.ndarray
    n_synapses: int
    past: int

    @property
    def ages(self) -> np.ndarray:
        return np.arange(self.overlaps.shape[1], dtype=np.float64)

    def signal(self) -> np.ndarray:
        """Mean overlap over runs, per age."""
        return self.overlaps.mean(axis=0)

    def signal_error(self) -> np.ndarray:
        """Standard error of :meth:`signal`."""
        return self.overlaps.std(axis=0, ddof=1) / np.sqrt(self.overlaps.shape[0])

    def noise(self) -> np.ndarray:
        """Standard deviation of the overlap over runs, per age."""
        return self.overlaps.std(axis=0, ddof=1)

    def snr(self) -> np.ndarray:
        return self.signal() / self.noise()


@eqx.filter_jit
def _run(step, c1, key, n_synapses: int, trials: int, burn_in: int, steps: int):
    dtype = step.dtype
    m = step.shape[0]
    k_burn, k_track, k_run = jax.random.split(key, 3)

    def advance(u, k):
        s = jax.random.rademacher(k, (trials, n_synapses), dtype)
        return (u @ step.T).at[..., 0].add(s / c1)

    def burn(u, i):
        return advance(u, jax.random.fold_in(k_burn, i)), None

    u = jnp.zeros((trials, n_synapses, m), dtype)
    u, _ = jax.lax.scan(burn, u, jnp.arange(burn_in))
    # the tracked memory arrives after the burn-in's
    s0 = jax.random.rademacher(k_track, (trials, n_synapses), dtype)
    u = (u @ step.T).at[..., 0].add(s0 / c1)

    def overlap(u):
        return jnp.mean(u[..., 0] * s0, axis=-1)

    def later(u, i):
        u = advance(u, jax.random.fold_in(k_run, i))
        return u, overlap(u)

    _, rest = jax.lax.scan(later, u, jnp.arange(steps))
    return jnp.concatenate([overlap(u)[None], rest], axis=0).T


def simulate(
    chain: BennaFusiChain,
    n_synapses: int,
    steps: int,
    *,
    key: Array,
    trials: int = 64,
    burn_in: int = 0,
) -> MemorySimulation:
    """The stochastic chain: ``trials`` independent runs of ``n_synapses`` synapses, all
    variables at 0, ``burn_in`` memories, then the tracked memory, then ``steps`` more; one
    memory (independent equiprobable +/-1 at every synapse, entering ``u_1`` as charge
    ``+/-1``) per unit time, the chain flowing exactly (``exp(A)``) in between. The
    overlaps are read right after each memory arrives, in the chain's dtype.

    Its mean and spread match :func:`memory_signal` and :func:`memory_noise` with
    ``past=burn_in``."""
    for name, v, low in (
        ("n_synapses", n_synapses, 1),
        ("steps", steps, 0),
        ("trials", trials, 2),
        ("burn_in", burn_in, 0),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"simulate: {name} must be an integer >= {low}, got {v!r}.")
    step = chain.step_matrix(1.0)
    c1 = chain.capacities[0]
    out = _run(step, c1, key, int(n_synapses), int(trials), int(burn_in), int(steps))
    return MemorySimulation(np.asarray(out, np.float64), int(n_synapses), int(burn_in))
