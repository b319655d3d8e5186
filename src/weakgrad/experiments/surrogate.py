"""Seed 002 (Gygax & Zenke, "Elucidating the theoretical underpinnings of surrogate gradient
learning in spiking neural networks", 2024/2025) and seed 003 (the performance-energy
trade-off): three experiments.

- :class:`SurrogateMatching`: on a stochastic (escape-noise) network, the cosine between the
  surrogate gradient (the mean of many :class:`~weakgrad.estimators.SurrogateGradient`
  samples, each on one noisy forward pass) and the gradient of the escape-noise-smoothed
  loss ``E[L]``, as the surrogate's steepness ``beta_SG`` moves away from the escape noise's
  ``beta_N``. The networks are two layers of :class:`~weakgrad.sim.neurons.EscapeNoiseLIF`
  and a linear readout run for one time step (the perceptron limit of 002's Fig. 1, where the
  LIF neuron integrates its input once): ``E[L]`` of the mean squared error is then a
  closed form given the first layer's spikes (independent Bernoulli spikes in layer 2, a
  linear readout), summed over all ``2^h1`` spike patterns of the first layer: exact, and
  its gradient is autodiff of it (no weak-gradient noise in the reference).
- :class:`SurrogateLoops`: 002's "surrogate gradients are not gradients" (Fig. 5): the line
  integral of the surrogate gradient of a step-activation network around a circle in a
  random 2-D plane of its parameters is not zero (and converges to that non-zero value as
  the integration steps grow), while the true gradient of the same network with sigmoid
  activations (autodiff) integrates to zero and follows the loss along the path.
- :class:`ActivityTradeoff`: study 003's performance-energy trade-off: a 5-H-3 LIF network on
  Yin-Yang (time-stepped simulator, spike-time inputs, membrane readout), trained by
  surrogate-gradient BPTT with an activity penalty
  (:func:`weakgrad.objectives.activity.with_activity_penalty`) at several weights; test
  accuracy against mean spikes per neuron per inference.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "SECTION",
    "MatchingSettings",
    "LoopSettings",
    "TradeoffSettings",
    "SurrogateMatching",
    "SurrogateLoops",
    "ActivityTradeoff",
    "check_cosine_peaks_at_match",
    "check_surrogate_loop_nonzero",
    "check_true_loop_zero",
    "check_tradeoff_curve",
    "check_activity_cut_cheaply",
    "spearman",
    "escape_network",
    "expected_loss",
]

SECTION = "Surrogate gradients in stochastic networks (002)"
ENERGY_SECTION = "Trading off performance and energy (003)"
SURROGATE_FAMILIES = ("sigmoid", "superspike")


def _check_int(name: str, value: Any, low: int) -> None:
    from weakgrad.errors import ConfigError

    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")


def _check_positive(name: str, value: Any) -> None:
    from weakgrad.errors import ConfigError

    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < np.inf
    if not ok:
        raise ConfigError(f"{name} must be a positive number, got {value!r}.")


def spearman(x: Any, y: Any) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if either is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


# ================================================================ (a) matching the noise


@dataclasses.dataclass(frozen=True)
class MatchingSettings(ExperimentSettings):
    """``networks`` random networks ``n_in-h1-h2-n_out`` (EscapeNoiseLIF, escape slope
    ``beta_n`` 1/mV, one step of ``dt_ms``; linear readout), ``batch`` inputs each; the
    surrogate gradient is the mean of ``samples`` noisy BPTT passes for every steepness
    ``beta_n * factor`` (``factors``), for each of ``families``: the sigmoid surrogate (the
    escape noise's shape) and SuperSpike. ``spread_mv``: std of each neuron's potential
    about the escape threshold over inputs (mV). For comparison, one weak gradient per
    network: Gaussian smoothing with ``weak_samples`` loss evaluations (antithetic, common
    neuron noise) of standard deviation ``weak_sigma`` (nA, the parameters' unit)."""

    networks: int = 3
    n_in: int = 4
    h1: int = 8
    h2: int = 8
    n_out: int = 2
    batch: int = 32
    beta_n: float = 1.0
    dt_ms: float = 1.0
    spread_mv: float = 3.0
    samples: int = 4096
    factors: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    families: tuple[str, ...] = ("sigmoid", "superspike")
    weak_samples: int = 8192
    weak_sigma: float = 0.1

    def __post_init__(self) -> None:
        from weakgrad.errors import ConfigError

        if "sigmoid" not in self.families or not set(self.families) <= set(SURROGATE_FAMILIES):
            raise ConfigError(
                f"families = {self.families!r} must hold 'sigmoid' (the escape noise's shape) "
                f"and only names of {SURROGATE_FAMILIES}."
            )

        for name in ("networks", "n_in", "h1", "h2", "n_out", "batch"):
            _check_int(name, getattr(self, name), 1)
        _check_int("samples", self.samples, 2)
        _check_int("weak_samples", self.weak_samples, 2)
        _check_positive("weak_sigma", self.weak_sigma)
        if self.h1 > 14:
            raise ConfigError(
                f"h1 = {self.h1}: the exact expectation sums 2^h1 spike patterns; use h1 <= 14."
            )
        for name in ("beta_n", "dt_ms", "spread_mv"):
            _check_positive(name, getattr(self, name))
        if 1.0 not in self.factors or len(self.factors) < 3:
            raise ConfigError(
                f"factors = {self.factors!r} must hold 1.0 (the matched steepness) and at "
                "least two others, e.g. (0.5, 1.0, 2.0)."
            )
        for f in self.factors:
            _check_positive("factors", f)


def escape_network(s: MatchingSettings, key: Any) -> Any:
    """A random ``NetworkObjective`` of :class:`MatchingSettings`: EscapeNoiseLIF layers whose
    potentials after the step sit ``N(0, spread_mv^2)`` about the escape threshold (biases
    cancel the 15 mV from rest to threshold), a linear readout, MSE against random targets."""
    import jax
    import jax.numpy as jnp

    from weakgrad.objectives.losses import MSE
    from weakgrad.objectives.network import NetworkObjective
    from weakgrad.sim.network import Layer, Network
    from weakgrad.sim.neurons.escape_noise_lif import EscapeNoiseLIF
    from weakgrad.sim.neurons.rate import Linear

    neuron = EscapeNoiseLIF(beta=s.beta_n)
    gain = neuron.r_m * (1.0 - np.exp(-s.dt_ms / neuron.tau_m))  # mV per nA after one step
    to_threshold = (neuron.theta - neuron.v_rest) / gain  # nA
    ks = jax.random.split(key, 5)
    f32 = jnp.float32

    def hidden(k, n_in, n_out, mean_in):
        # input x with mean mean_in per unit: centre the drive, spread it by spread_mv
        w = s.spread_mv / gain / np.sqrt(n_in * 0.25) * jax.random.normal(k, (n_in, n_out), f32)
        b = to_threshold - mean_in * w.sum(0)
        return Layer(w, b.astype(f32), neuron)

    l1 = hidden(ks[0], s.n_in, s.h1, 0.5)
    l2 = hidden(ks[1], s.h1, s.h2, 0.5)
    w3 = jax.random.normal(ks[2], (s.h2, s.n_out), f32) / np.sqrt(s.h2)
    l3 = Layer(w3, jnp.zeros(s.n_out, f32), Linear())
    x = jax.random.uniform(ks[3], (s.batch, s.n_in), f32)
    t = jax.random.uniform(ks[4], (s.batch, s.n_out), f32)
    return NetworkObjective(Network((l1, l2, l3)), x, t, MSE(), dt=s.dt_ms, steps=1)


def expected_loss(objective: Any, params: Any) -> Any:
    """The exact expectation over the escape noise of :func:`escape_network`'s batch-mean
    MSE at ``params``: a sum over the first layer's ``2^h1`` spike patterns of the closed
    form given them (second-layer spikes independent Bernoulli, a linear readout:
    ``E[(y - t)^2] = (E y - t)^2 + sum_j w_j^2 p_j (1 - p_j)``). Differentiable."""
    import jax
    import jax.numpy as jnp

    from weakgrad.sim.neurons.lif import lif_integrate

    net = objective.network(params)
    l1, l2, l3 = net.layers
    n1, n2 = l1.neuron, l2.neuron
    dt = objective.dt

    def prob(layer, neuron, x):
        v0 = jnp.full(layer.n_out, neuron.v_rest, x.dtype)
        v = lif_integrate(
            v0, x @ layer.weight + layer.bias, dt, tau_m=neuron.tau_m, r_m=neuron.r_m,
            v_rest=neuron.v_rest,
        )  # fmt: skip
        return neuron.spike_probability(v)

    h1 = l1.n_out
    patterns = jnp.asarray(list(itertools.product((0.0, 1.0), repeat=h1)), l1.weight.dtype)

    def one(x, t):
        p1 = prob(l1, n1, x)
        logp = patterns @ jnp.log(p1) + (1 - patterns) @ jnp.log1p(-p1)  # (2^h1,)
        p2 = jax.vmap(lambda z: prob(l2, n2, z))(patterns)  # (2^h1, h2)
        mean_y = p2 @ l3.weight + l3.bias
        var_y = (p2 * (1 - p2)) @ (l3.weight**2)
        err = jnp.mean((mean_y - t) ** 2 + var_y, axis=-1)
        return jnp.sum(jnp.exp(logp) * err)

    return jax.vmap(one)(objective.inputs, objective.targets).mean()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def matching_study(s: MatchingSettings, progress: Callable[[int], None] | None = None) -> dict:
    """Cosines ``(family, network, factor)`` of the mean surrogate gradient with the exact
    ``grad E[L]``; the same from two halves of the samples (their spread is the Monte-Carlo
    error); the exact loss against a Monte-Carlo mean of the simulated loss."""
    import equinox as eqx
    import jax
    from jax.flatten_util import ravel_pytree

    from weakgrad.estimators.autodiff import SurrogateGradient
    from weakgrad.estimators.smoothing import GaussianSmoothing
    from weakgrad.sim.surrogates import SigmoidSurrogate, SuperSpike

    classes = {"sigmoid": SigmoidSurrogate, "superspike": SuperSpike}
    families = {name: classes[name] for name in s.families}
    cos = np.zeros((len(families), s.networks, len(s.factors)))
    halves = np.zeros((len(families), s.networks, len(s.factors), 2))
    exact_l, mc_l, mc_se = [], [], []

    @eqx.filter_jit
    def losses(obj, params, keys):
        return jax.vmap(lambda k: obj(params, k))(keys)

    @eqx.filter_jit
    def exact_grad(obj, params):
        return ravel_pytree(jax.grad(expected_loss, 1)(obj, params))[0], expected_loss(obj, params)

    @eqx.filter_jit
    def grads(est, obj, params, keys):
        def one(k):
            g, _, _ = est.estimate(obj, params, None, key=k)
            return ravel_pytree(g)[0]

        return jax.vmap(one)(keys)

    weak_est = GaussianSmoothing(sigma=s.weak_sigma, samples=s.weak_samples)

    @eqx.filter_jit
    def weak(obj, params, key):
        g, _, _ = weak_est.estimate(obj, params, weak_est.init(params), key=key)
        return ravel_pytree(g)[0]

    weak_cos = np.zeros(s.networks)
    root = jax.random.key(s.seed)
    half = s.samples // 2
    for n in range(s.networks):
        k_net, k_noise = jax.random.split(jax.random.fold_in(root, n))
        obj = escape_network(s, k_net)
        params = obj.params()
        flat, loss = exact_grad(obj, params)
        flat_exact = np.asarray(flat, np.float64)
        keys = jax.random.split(k_noise, s.samples)
        sim = np.asarray(losses(obj, params, keys), np.float64)
        exact_l.append(float(loss))
        mc_l.append(float(sim.mean()))
        mc_se.append(float(sim.std() / np.sqrt(s.samples)))
        k_weak = jax.random.fold_in(k_noise, 1)
        weak_cos[n] = _cosine(np.asarray(weak(obj, params, k_weak), np.float64), flat_exact)
        for f, cls in enumerate(families.values()):
            for j, factor in enumerate(s.factors):
                est = SurrogateGradient(cls(beta=float(s.beta_n * factor)))
                g = np.asarray(grads(est, obj, params, keys), np.float64)
                cos[f, n, j] = _cosine(g.mean(0), flat_exact)
                halves[f, n, j] = (
                    _cosine(g[:half].mean(0), flat_exact),
                    _cosine(g[half:].mean(0), flat_exact),
                )
        if progress is not None:
            progress(1)
    return {
        "families": list(families),
        "factors": np.asarray(s.factors),
        "beta_n": s.beta_n,
        "cosine": cos,
        "cosine_halves": halves,
        "mean_cosine": cos.mean(1),
        "weak_cosine": weak_cos,
        "weak_samples": s.weak_samples,
        "exact_loss": np.asarray(exact_l),
        "mc_loss": np.asarray(mc_l),
        "mc_loss_se": np.asarray(mc_se),
    }


def check_cosine_peaks_at_match(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Mean cosine over networks of the sigmoid-family surrogate gradient with the exact
    gradient of the smoothed loss, over the steepness grid: highest at the matched
    steepness (factor 1): reproduced; at a neighbouring grid point within a factor 2 of it:
    partly; elsewhere: not reproduced."""
    fam = list(data["families"]).index("sigmoid")
    factors = np.asarray(data["factors"], np.float64)
    c = np.asarray(data["mean_cosine"], np.float64)[fam]
    best = float(factors[int(np.nanargmax(c))])
    at_match = float(c[int(np.argmin(np.abs(factors - 1.0)))])
    measured = (
        f"sigmoid surrogate: mean cosine {at_match:.4f} at beta_SG = beta_N, highest "
        f"{float(np.nanmax(c)):.4f} at beta_SG = {best:g} beta_N (grid "
        f"{', '.join(f'{f:g}' for f in factors)})"
    )
    if best == 1.0:
        return Verdict.REPRODUCED, measured
    if 0.5 <= best <= 2.0:
        return Verdict.PARTLY, measured
    return Verdict.NOT_REPRODUCED, measured


MATCHED = Claim(
    id="surrogate-matched-to-escape-noise",
    section=SECTION,
    claim="In stochastic spiking networks the surrogate derivative should match the "
    "derivative of the neuronal escape noise function: surrogate gradients then relate to "
    "the derivative of the noise-smoothed (expected) loss (002, abstract and Fig. 1).",
    measures="cosine between the mean of many surrogate-gradient samples (sigmoid surrogate "
    "of steepness beta_SG) and the exact gradient of the expected loss, averaged over random "
    "two-layer escape-noise networks, on a grid beta_SG = beta_N x (1/8 .. 8): highest at "
    "beta_SG = beta_N: reproduced; at beta_N/2 or 2 beta_N: partly; elsewhere: not.",
    check=check_cosine_peaks_at_match,
)


# ================================================================ (b) loop integrals


@dataclasses.dataclass(frozen=True)
class LoopSettings(ExperimentSettings):
    """A ``n_in-hidden-1`` network on ``batch`` fixed inputs (MSE to random targets): step
    activations with sigmoid surrogates of steepness ``betas``, and the same weights with
    sigmoid activations (true gradient: autodiff). A circle of ``radius`` (parameter
    units) in the plane of two random unit directions through the parameters, integrated
    with each of ``steps`` midpoint steps (the last is the result, the one before gives
    its numerical error)."""

    n_in: int = 2
    hidden: int = 3
    batch: int = 4
    radius: float = 1.0
    betas: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0)
    steps: tuple[int, ...] = (64, 256, 1024, 4096)

    def __post_init__(self) -> None:
        from weakgrad.errors import ConfigError

        for name in ("n_in", "hidden", "batch"):
            _check_int(name, getattr(self, name), 1)
        _check_positive("radius", self.radius)
        if not self.betas:
            raise ConfigError("betas must hold at least one surrogate steepness, e.g. (1.0,).")
        for b in self.betas:
            _check_positive("betas", b)
        if len(self.steps) < 2 or list(self.steps) != sorted(set(self.steps)):
            raise ConfigError(
                f"steps = {self.steps!r} must be at least two increasing step counts, e.g. "
                "(256, 1024)."
            )
        for n in self.steps:
            _check_int("steps", n, 4)


def _loop_networks(s: LoopSettings) -> tuple[Any, Any]:
    import jax
    import jax.numpy as jnp

    from weakgrad.objectives.losses import MSE
    from weakgrad.objectives.network import NetworkObjective
    from weakgrad.sim.network import Layer, Network
    from weakgrad.sim.neurons.rate import Perceptron, Sigmoid

    ks = jax.random.split(jax.random.key(s.seed), 6)
    f32 = jnp.float32
    w1 = jax.random.normal(ks[0], (s.n_in, s.hidden), f32)
    b1 = 0.5 * jax.random.normal(ks[1], (s.hidden,), f32)
    w2 = jax.random.normal(ks[2], (s.hidden, 1), f32)
    b2 = 0.5 * jax.random.normal(ks[3], (1,), f32)
    x = jax.random.normal(ks[4], (s.batch, s.n_in), f32)
    t = jax.random.uniform(ks[5], (s.batch, 1), f32)

    def build(neuron):
        net = Network((Layer(w1, b1, neuron), Layer(w2, b2, neuron)))
        return NetworkObjective(net, x, t, MSE(), steps=1)

    return build(Perceptron()), build(Sigmoid())


def loop_study(s: LoopSettings, progress: Callable[[int], None] | None = None) -> dict:
    """Loop integrals of each surrogate gradient (step network) and of the true gradient
    (sigmoid network) for every number of steps; the running integral over the angle at
    the most steps, and the loss along the path."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree

    from weakgrad.estimators.autodiff import Autodiff, SurrogateGradient
    from weakgrad.sim.surrogates import SigmoidSurrogate

    step_obj, sig_obj = _loop_networks(s)
    flat0, unravel = ravel_pytree(step_obj.params())
    k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(s.seed), 1))
    d1 = jax.random.normal(k1, flat0.shape, flat0.dtype)
    d2 = jax.random.normal(k2, flat0.shape, flat0.dtype)
    d1 = d1 / jnp.linalg.norm(d1)
    d2 = d2 - (d2 @ d1) * d1
    d2 = d2 / jnp.linalg.norm(d2)
    key = jax.random.key(0)

    def point(phi):
        return flat0 + s.radius * (jnp.cos(phi) * d1 + jnp.sin(phi) * d2)

    def tangent(phi):
        return s.radius * (-jnp.sin(phi) * d1 + jnp.cos(phi) * d2)

    @eqx.filter_jit
    def along(est, obj, n):
        # midpoint rule: sum_j g(theta(phi_j+1/2)) . (theta(phi_j+1) - theta(phi_j))
        phi = 2 * jnp.pi * jnp.arange(n + 1, dtype=flat0.dtype) / n
        mid = 0.5 * (phi[1:] + phi[:-1])

        def one(a, b, m):
            g, _, _ = est.estimate(obj, unravel(point(m)), None, key=key)
            return ravel_pytree(g)[0] @ (point(b) - point(a)), obj(unravel(point(m)), key)

        return jax.vmap(one)(phi[:-1], phi[1:], mid)

    series = [(f"surrogate beta={b:g}", SurrogateGradient(SigmoidSurrogate(beta=b)), step_obj)
              for b in s.betas]  # fmt: skip
    series.append(("true gradient (sigmoid network)", Autodiff(), sig_obj))
    names = [name for name, _, _ in series]
    integrals = np.zeros((len(series), len(s.steps)))
    scale = np.zeros(len(series))
    running, path_loss = [], []
    for i, (_, est, obj) in enumerate(series):
        for j, n in enumerate(s.steps):
            pieces, loss = along(est, obj, int(n))
            pieces = np.asarray(pieces, np.float64)
            integrals[i, j] = pieces.sum()
            if j == len(s.steps) - 1:
                scale[i] = np.abs(pieces).sum()
                running.append(np.concatenate([[0.0], np.cumsum(pieces)]))
                path_loss.append(np.asarray(loss, np.float64))
        if progress is not None:
            progress(1)
    n = s.steps[-1]
    phi = 2 * np.pi * np.arange(n + 1) / n
    return {
        "names": names,
        "betas": np.asarray(s.betas),
        "steps": np.asarray(s.steps),
        "integrals": integrals,
        "scale": scale,
        "angle": phi,
        "running": np.asarray(running),
        # the loss at each midpoint, for comparing with the running integral
        "mid_angle": 0.5 * (phi[1:] + phi[:-1]),
        "path_loss": np.asarray(path_loss),
    }


def _loop_numbers(data: Mapping[str, Any], i: int) -> tuple[float, float, float]:
    ints = np.asarray(data["integrals"], np.float64)[i]
    scale = float(np.asarray(data["scale"], np.float64)[i])
    return float(ints[-1]), float(abs(ints[-1] - ints[-2])), scale


def check_surrogate_loop_nonzero(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Per surrogate steepness: the loop integral at the most steps is more than 10 times
    its numerical error (its change from the previous step count) and at least 1e-3 of the
    integrand's total variation ``sum |g . dtheta|``. Every steepness: reproduced; some:
    partly; none: not reproduced."""
    n_sg = len(data["betas"])
    ok, parts = [], []
    for i in range(n_sg):
        val, err, scale = _loop_numbers(data, i)
        rel = abs(val) / scale if scale > 0 else 0.0
        ok.append(abs(val) > 10 * err and rel >= 1e-3)
        parts.append(
            f"beta {float(data['betas'][i]):g}: {val:.4g} (error {err:.2g}, {rel:.2g} of "
            "sum|g.dtheta|)"
        )
    measured = "surrogate loop integrals: " + "; ".join(parts)
    if all(ok):
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if any(ok) else Verdict.NOT_REPRODUCED), measured


def check_true_loop_zero(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The true gradient (sigmoid network): loop integral at most 1e-4 of ``sum |g .
    dtheta|``, and its running integral follows the loss along the path (largest gap at most
    1e-3 of the loss's range on the path): reproduced; only the first: partly."""
    i = len(data["betas"])
    val, _, scale = _loop_numbers(data, i)
    rel = abs(val) / scale if scale > 0 else float("inf")
    run = np.asarray(data["running"], np.float64)[i]
    loss = np.asarray(data["path_loss"], np.float64)[i]
    # running integral at the midpoints (mean of its ends) against the loss change there
    run_mid = 0.5 * (run[1:] + run[:-1])
    change = loss - loss[0] + run_mid[0]
    span = float(np.ptp(loss))
    gap = float(np.max(np.abs(run_mid - change))) / span if span > 0 else float("inf")
    measured = (
        f"true gradient: loop integral {val:.3g} ({rel:.2g} of sum|g.dtheta| = {scale:.3g}); "
        f"running integral vs loss along the path: largest gap {gap:.2g} of the loss range"
    )
    if rel <= 1e-4 and gap <= 1e-3:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if rel <= 1e-4 else Verdict.NOT_REPRODUCED), measured


SG_LOOP = Claim(
    id="surrogate-gradients-not-gradients",
    section=SECTION,
    claim="Surrogate gradients are generally not gradients of a surrogate loss: their "
    "integral around a closed path in parameter space is not zero, and the numerical "
    "integrals converge to finite values (002, abstract and Fig. 5).",
    measures="step-activation network, sigmoid surrogates of several steepnesses, a circle "
    "in a random 2-D parameter plane, midpoint rule with up to 4096 steps: |loop integral| "
    "> 10 x its change from the previous step count and >= 1e-3 of sum|g.dtheta|, for every "
    "steepness: reproduced; for some: partly; none: not.",
    check=check_surrogate_loop_nonzero,
)
TRUE_LOOP = Claim(
    id="true-gradient-loop-closes",
    section=SECTION,
    claim="The integrated actual derivative of the network with sigmoid activation matches "
    "the output: the true gradient's loop integral vanishes (002, Fig. 5B).",
    measures="the same circle for the sigmoid network's autodiff gradient: |loop integral| "
    "<= 1e-4 of sum|g.dtheta| and the running integral within 1e-3 of the loss range of the "
    "loss along the path: reproduced; only the first: partly; else not.",
    check=check_true_loop_zero,
)


# ================================================================ (c) performance vs energy


@dataclasses.dataclass(frozen=True)
class TradeoffSettings(ExperimentSettings):
    """Yin-Yang (``train_size`` training points, the 1,000 test points) on a 5-``hidden``-3
    LIF network over ``duration_ms`` at ``dt_ms`` (exponential synapses ``tau_syn_ms``;
    non-spiking outputs read by their mean potential), trained ``train_steps`` Adam steps
    (``learning_rate``, batches of ``batch``) by surrogate gradients (SuperSpike of slope
    ``beta`` 1/mV) at each activity penalty ``weights`` (loss units per spike per neuron
    per inference); all weights start from the same parameters and see the same batches."""

    hidden: int = 40
    duration_ms: float = 30.0
    dt_ms: float = 0.5
    tau_syn_ms: float = 5.0
    train_size: int = 5000
    batch: int = 32
    train_steps: int = 2000
    learning_rate: float = 0.01
    beta: float = 1.0
    readout_scale: float = 1.0
    weights: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)

    def __post_init__(self) -> None:
        from weakgrad.errors import ConfigError

        for name in ("hidden", "train_size", "batch", "train_steps"):
            _check_int(name, getattr(self, name), 1)
        for name in ("duration_ms", "dt_ms", "tau_syn_ms", "learning_rate", "beta"):
            _check_positive(name, getattr(self, name))
        _check_positive("readout_scale", self.readout_scale)
        if self.dt_ms >= self.duration_ms:
            raise ConfigError(
                f"dt_ms = {self.dt_ms} must be below duration_ms = {self.duration_ms}."
            )
        if self.batch > self.train_size:
            raise ConfigError(f"batch = {self.batch} exceeds train_size = {self.train_size}.")
        w = self.weights
        if len(w) < 3 or w[0] != 0 or list(w) != sorted(set(w)):
            raise ConfigError(
                f"weights = {w!r} must start at 0 (the unpenalised network) and increase, "
                "with at least three values, e.g. (0.0, 0.03, 0.3)."
            )


def yinyang_grid_inputs(features: np.ndarray, steps: int, dt_ms: float) -> np.ndarray:
    """Yin-Yang features ``(n, 4)`` -> per-step inputs ``(n, steps, 5)``: a 1 at the step
    holding each input spike time (:func:`weakgrad.tasks.yinyang.encode_spike_times`)."""
    from weakgrad.tasks.yinyang import encode_spike_times

    times = encode_spike_times(features)
    idx = np.clip(np.floor(times / dt_ms).astype(int), 0, steps - 1)
    out = np.zeros((len(times), steps, times.shape[1]), np.float32)
    rows = np.arange(len(times))[:, None]
    out[rows, idx, np.arange(times.shape[1])[None, :]] = 1.0
    return out


def tradeoff_objective(s: TradeoffSettings, x: np.ndarray, y: np.ndarray) -> Any:
    """The Yin-Yang LIF network as a (time-stepped) ``NetworkObjective``: hidden LIF with
    exponential synapses; three output LIF whose threshold is out of reach (leaky
    integrators, read by their mean potential in mV); softmax cross-entropy."""
    import jax
    import jax.numpy as jnp

    from weakgrad.objectives.losses import SoftmaxCrossEntropy
    from weakgrad.objectives.network import MeanVoltage, NetworkObjective
    from weakgrad.sim.network import Layer, Network
    from weakgrad.sim.neurons.lif import LIF
    from weakgrad.sim.synapses import Exponential

    steps = int(round(s.duration_ms / s.dt_ms))
    k1, k2 = jax.random.split(jax.random.key(s.seed))
    f32 = jnp.float32
    # One input spike of weight w gives a synaptic current of about w (1 - e^{-dt/tau_s})
    # decaying with tau_syn; ~20 nA-weights from five inputs bring V across the 15 mV gap.
    w1 = 20.0 + 10.0 * jax.random.normal(k1, (5, s.hidden), f32)
    w2 = 20.0 / np.sqrt(s.hidden) * jax.random.normal(k2, (s.hidden, 3), f32)
    syn = Exponential(tau=s.tau_syn_ms)
    hidden = Layer(w1, jnp.zeros(s.hidden, f32), LIF(), syn)
    out = Layer(w2, jnp.zeros(3, f32), LIF(v_threshold=1e4), syn)
    return NetworkObjective(
        Network((hidden, out)), jnp.asarray(yinyang_grid_inputs(x, steps, s.dt_ms)),
        jnp.asarray(y, jnp.int32), SoftmaxCrossEntropy(scale=s.readout_scale), dt=s.dt_ms,
        steps=steps, read=MeanVoltage(),
    )  # fmt: skip


def tradeoff_study(s: TradeoffSettings, progress: Callable[[int], None] | None = None) -> dict:
    """Train one network per penalty weight (vmapped, one compiled step); test accuracy and
    mean spikes per neuron per inference of each, and their training curves."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from weakgrad.estimators.autodiff import SurrogateGradient
    from weakgrad.objectives.activity import activity_of, with_activity_penalty
    from weakgrad.objectives.losses import accuracy
    from weakgrad.sim.surrogates import SuperSpike
    from weakgrad.tasks.yinyang import yinyang_splits
    from weakgrad.training.optim import standard_promotion

    data = yinyang_splits(s.seed, {"train": s.train_size})
    x_tr, y_tr = data.x_train, data.y_train
    base = tradeoff_objective(s, x_tr[: s.batch], y_tr[: s.batch])
    steps = base.steps
    train_in = jnp.asarray(yinyang_grid_inputs(x_tr, steps, s.dt_ms))
    train_y = jnp.asarray(y_tr, jnp.int32)
    pen = with_activity_penalty(base, 0.0)
    est = SurrogateGradient(SuperSpike(beta=s.beta))
    opt = standard_promotion(optax.adam(s.learning_rate))
    k = len(s.weights)
    params0 = base.params()
    params = jax.tree.map(lambda a: jnp.broadcast_to(a, (k, *a.shape)), params0)
    opt_state = jax.vmap(opt.init)(params)
    weights = jnp.asarray(s.weights, jnp.float32)
    key = jax.random.key(0)  # deterministic neurons: the key is unused

    @eqx.filter_jit
    def train_step(params, opt_state, idx):
        xb, yb = train_in[idx], train_y[idx]
        obj = eqx.tree_at(lambda o: (o.inputs, o.targets), pen, (xb, yb))

        def one(p, st, w):
            o = eqx.tree_at(lambda o: o.loss.weight, obj, w)
            g, _, info = est.estimate(o, p, None, key=key)
            upd, st = opt.update(g, st, p)
            return optax.apply_updates(p, upd), st, info.loss

        return jax.vmap(one)(params, opt_state, weights)

    rng = np.random.default_rng([s.seed, 17])
    curve = np.zeros((s.train_steps, k))
    chunk = max(1, s.train_steps // 10)
    for i in range(s.train_steps):
        idx = jnp.asarray(rng.choice(len(x_tr), s.batch, replace=False))
        params, opt_state, loss = train_step(params, opt_state, idx)
        curve[i] = np.asarray(loss)
        if progress is not None and (i + 1) % chunk == 0:
            progress(1)

    test = tradeoff_objective(s, data.x_test, data.y_test)

    @eqx.filter_jit
    def evaluate(params):
        def one(p):
            readout, _ = test.readout(p, key)
            return accuracy(readout, test.targets), jnp.mean(activity_of(test, p, key))

        return jax.lax.map(one, params)

    acc, spikes = evaluate(params)
    return {
        "weights": np.asarray(s.weights),
        "test_accuracy": np.asarray(acc, np.float64),
        "spikes_per_inference": np.asarray(spikes, np.float64),
        "neurons": int(s.hidden + 3),
        "train_loss": curve,
        "test_size": int(len(data.x_test)),
    }


def check_tradeoff_curve(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Spikes per inference fall as the penalty grows (Spearman(weight, spikes) <= -0.9) and
    accuracy falls with them (Spearman(spikes, accuracy) >= 0.5): reproduced; only the
    first: partly; otherwise not reproduced."""
    w = np.asarray(data["weights"], np.float64)
    sp = np.asarray(data["spikes_per_inference"], np.float64)
    acc = np.asarray(data["test_accuracy"], np.float64)
    r_ws, r_sa = spearman(w, sp), spearman(sp, acc)
    measured = (
        f"Spearman(weight, spikes) = {r_ws:.2f}, Spearman(spikes, accuracy) = {r_sa:.2f}; "
        + ", ".join(
            f"w={a:g}: {b:.3g} spikes, acc {c:.3f}" for a, b, c in zip(w, sp, acc, strict=True)
        )
    )
    falls = bool(r_ws <= -0.9)
    if falls and r_sa >= 0.5:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if falls else Verdict.NOT_REPRODUCED), measured


def check_activity_cut_cheaply(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """A penalised network with at most 1/3 of the unpenalised spikes per inference and test
    accuracy at least the unpenalised minus 0.03: reproduced; at most 1/2 of the spikes and
    accuracy at least minus 0.05: partly; otherwise not reproduced."""
    sp = np.asarray(data["spikes_per_inference"], np.float64)
    acc = np.asarray(data["test_accuracy"], np.float64)
    w = np.asarray(data["weights"], np.float64)
    s0, a0 = sp[0], acc[0]
    ratio = sp[1:] / s0 if s0 > 0 else np.full(sp[1:].shape, np.inf)
    drop = a0 - acc[1:]
    full = (ratio <= 1 / 3) & (drop <= 0.03)
    part = (ratio <= 1 / 2) & (drop <= 0.05)
    best = int(np.argmin(np.where(drop <= 0.05, ratio, np.inf))) if ratio.size else 0
    measured = (
        f"unpenalised: {s0:.3g} spikes per neuron per inference, accuracy {a0:.3f}; "
        f"fewest spikes within 0.05 accuracy: w={w[1 + best]:g}, {ratio[best]:.2g} of the spikes, "
        f"accuracy {acc[1 + best]:.3f}"
        if np.isfinite(ratio[best]) and drop[best] <= 0.05
        else f"unpenalised: {s0:.3g} spikes, accuracy {a0:.3f}; no penalised network within "
        "0.05 accuracy"
    )
    if full.any():
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if part.any() else Verdict.NOT_REPRODUCED), measured


TRADEOFF = Claim(
    id="performance-energy-tradeoff-curve",
    section=ENERGY_SECTION,
    claim="SNNs follow a characteristic trade-off curve between activity levels and coding "
    "loss (performance); a joint loss of performance and activity moves a network along it "
    "(003, 'Trading Off Performance and Energy in Spiking Networks').",
    measures="Yin-Yang LIF network trained by surrogate gradients at activity-penalty weights "
    "0 .. 3: Spearman(weight, spikes per inference) <= -0.9 and Spearman(spikes, test "
    "accuracy) >= 0.5: reproduced; only the first: partly; else not.",
    check=check_tradeoff_curve,
)
CHEAP_CUT = Claim(
    id="activity-cut-at-small-cost",
    section=ENERGY_SECTION,
    claim="Performance and energy use can be traded off: activity can be cut by a large "
    "factor at a small cost in performance (003, same talk; as read in issue 17).",
    measures="some penalised network with <= 1/3 of the unpenalised spikes per inference and "
    "test accuracy >= unpenalised - 0.03: reproduced; <= 1/2 and >= -0.05: partly; else not.",
    check=check_activity_cut_cheaply,
)


# ================================================================ results and experiments


def _colours(n: int) -> list:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    return [cmap(v) for v in np.linspace(0.0, 0.85, n)]


@dataclasses.dataclass(frozen=True)
class _MatchingResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: MatchingSettings
    data: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        d = self.data
        write_npz(folder / "matching.npz", **{k: np.asarray(v) for k, v in d.items()})
        rows = [
            [fam, float(f), float(d["mean_cosine"][i, j]), *map(float, d["cosine"][i, :, j])]
            for i, fam in enumerate(d["families"])
            for j, f in enumerate(d["factors"])
        ]
        nets = [f"cosine_net{n}" for n in range(d["cosine"].shape[1])]
        write_csv(folder / "matching.csv", ["surrogate", "beta_sg_over_beta_n",
                                            "mean_cosine", *nets], rows)  # fmt: skip

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt
        import matplotlib.ticker as mticker

        d = self.data
        f = np.asarray(d["factors"]) * float(d["beta_n"])
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
        colours = {"sigmoid": "tab:orange", "superspike": "tab:blue"}
        for ax, gap in zip(axes, (False, True), strict=True):
            for i, fam in enumerate(d["families"]):
                c = np.asarray(d["cosine"])[i]
                m = np.asarray(d["mean_cosine"])[i]
                c, m = (1 - c, 1 - m) if gap else (c, m)
                for n in range(c.shape[0]):
                    ax.plot(f, c[n], color=colours[fam], alpha=0.3, lw=0.8)
                label = f"{fam} surrogate (mean of {c.shape[0]} networks; thin: each)"
                ax.plot(f, m, "o-", color=colours[fam], label=label)
            wc = float(np.mean(d["weak_cosine"]))
            ax.axhline(1 - wc if gap else wc, color="tab:green", ls=":", lw=1.5,
                       label=f"weak gradient (Gaussian smoothing, {int(d['weak_samples'])} "
                       "losses; mean)")  # fmt: skip
            ax.axvline(float(d["beta_n"]), color="k", ls="--", lw=1,
                       label=f"escape noise beta_N = {float(d['beta_n']):g} /mV")  # fmt: skip
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
            ax.set_xlabel("surrogate steepness beta_SG (1/mV)")
        axes[0].set_ylabel("cosine(surrogate gradient, grad E[loss]) (1)")
        axes[0].set_title("surrogate gradient vs gradient of the noise-smoothed loss")
        axes[0].legend(fontsize=7, loc="lower center")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("1 - cosine (1, log scale)")
        axes[1].set_title("the same, distance from 1")
        return {"matching": fig}


@dataclasses.dataclass(frozen=True)
class _LoopResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: LoopSettings
    data: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        d = self.data
        write_npz(folder / "loops.npz", **{k: np.asarray(v) for k, v in d.items()})
        rows = [
            [name, int(n), float(d["integrals"][i, j]), float(d["scale"][i])]
            for i, name in enumerate(d["names"])
            for j, n in enumerate(d["steps"])
        ]
        write_csv(folder / "loops.csv", ["gradient", "steps", "loop_integral",
                                         "sum_abs_g_dtheta"], rows)  # fmt: skip

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        d = self.data
        names = list(d["names"])
        cols = _colours(len(names) - 1) + ["tab:red"]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        ang = np.degrees(np.asarray(d["angle"]))
        for i, name in enumerate(names):
            a1.plot(ang, np.asarray(d["running"])[i], color=cols[i], label=name)
        mid = np.degrees(np.asarray(d["mid_angle"]))
        loss = np.asarray(d["path_loss"])[-1]
        a1.plot(mid, loss - loss[0], "k:", lw=1.5, label="sigmoid network's loss change")
        step_loss = np.asarray(d["path_loss"])[0]
        a1.plot(mid, step_loss - step_loss[0], "--", color="0.5", lw=1,
                label="step network's loss change")  # fmt: skip
        a1.set_xlabel("angle along the circle (degrees)")
        a1.set_ylabel("running integral of g . dtheta (loss units)")
        a1.set_title("integrated gradients around a closed loop")
        a1.legend(fontsize=7)
        steps = np.asarray(d["steps"])
        for i, name in enumerate(names):
            v = np.abs(np.asarray(d["integrals"])[i])
            a2.loglog(steps, np.maximum(v, 1e-12), "o-", color=cols[i], label=name)
        a2.set_xlabel("integration steps around the loop")
        a2.set_ylabel("|loop integral| (loss units; floor 1e-12)")
        a2.set_title("loop integral vs integration steps")
        a2.legend(fontsize=7)
        return {"loops": fig}


@dataclasses.dataclass(frozen=True)
class _TradeoffResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: TradeoffSettings
    data: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_npz

        d = self.data
        write_npz(folder / "tradeoff.npz", **{k: np.asarray(v) for k, v in d.items()})
        rows = [
            [float(w), float(a), float(sp)]
            for w, a, sp in zip(
                d["weights"], d["test_accuracy"], d["spikes_per_inference"], strict=True
            )
        ]
        write_csv(folder / "tradeoff.csv", ["penalty_weight", "test_accuracy",
                                            "spikes_per_neuron_per_inference"], rows)  # fmt: skip

    def figures(self) -> dict[str, Any]:
        import matplotlib.pyplot as plt

        d = self.data
        w = np.asarray(d["weights"])
        cols = _colours(len(w))
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        sp, acc = np.asarray(d["spikes_per_inference"]), np.asarray(d["test_accuracy"])
        a1.plot(sp, acc, "-", color="0.6", lw=1, zorder=1)
        for i in range(len(w)):
            a1.scatter(sp[i], acc[i], color=cols[i], s=40, zorder=2, label=f"penalty {w[i]:g}")
        a1.axhline(1 / 3, color="k", ls=":", lw=1, label="chance (1/3)")
        a1.set_xlabel(f"mean spikes per neuron per inference ({int(d['neurons'])} neurons)")
        a1.set_ylabel(f"test accuracy ({int(d['test_size'])} points)")
        a1.set_title("Yin-Yang: performance vs energy")
        a1.legend(fontsize=7)
        curve = np.asarray(d["train_loss"])
        for i in range(len(w)):
            a2.plot(np.arange(1, len(curve) + 1), curve[:, i], color=cols[i], lw=0.8,
                    label=f"penalty {w[i]:g}")  # fmt: skip
        a2.set_xlabel("training step")
        a2.set_ylabel("penalised training loss (nats + penalty)")
        a2.set_title("training (surrogate gradients)")
        a2.legend(fontsize=7)
        return {"tradeoff": fig}


class SurrogateMatching(AbstractExperiment):
    """Cosine of the surrogate gradient with the gradient of the escape-noise-smoothed loss
    against the surrogate's steepness."""

    name = "surrogate-matching"
    title = "Surrogate steepness vs the escape noise's"
    section = SECTION
    claims = (MATCHED,)

    def quick(self) -> MatchingSettings:
        return MatchingSettings()

    def full(self) -> MatchingSettings:
        factors = (0.125, 0.25, 0.5, 0.71, 1.0, 1.41, 2.0, 4.0, 8.0)
        return MatchingSettings(networks=10, h1=10, h2=16, samples=16384, factors=factors)

    def tiny(self) -> MatchingSettings:
        return MatchingSettings(networks=1, h1=3, h2=3, batch=4, samples=16,
                                factors=(0.5, 1.0, 2.0), families=("sigmoid",),
                                weak_samples=16)  # fmt: skip

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _MatchingResult:
        return _MatchingResult(self, settings, matching_study(settings, progress))


class SurrogateLoops(AbstractExperiment):
    """Loop integrals of surrogate gradients and of the true gradient."""

    name = "surrogate-loops"
    title = "Surrogate gradients are not gradients: loop integrals"
    section = SECTION
    claims = (SG_LOOP, TRUE_LOOP)

    def quick(self) -> LoopSettings:
        return LoopSettings()

    def full(self) -> LoopSettings:
        return LoopSettings(steps=(256, 1024, 4096, 16384))

    def tiny(self) -> LoopSettings:
        return LoopSettings(betas=(1.0,), steps=(16, 64))

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _LoopResult:
        return _LoopResult(self, settings, loop_study(settings, progress))


class ActivityTradeoff(AbstractExperiment):
    """Test accuracy against spikes per inference over activity-penalty weights."""

    name = "activity-tradeoff"
    title = "Performance vs energy: an activity penalty on Yin-Yang"
    section = ENERGY_SECTION
    claims = (TRADEOFF, CHEAP_CUT)

    def quick(self) -> TradeoffSettings:
        return TradeoffSettings()

    def full(self) -> TradeoffSettings:
        weights = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
        return TradeoffSettings(hidden=120, train_steps=5000, dt_ms=0.1, weights=weights)

    def tiny(self) -> TradeoffSettings:
        return TradeoffSettings(hidden=6, train_size=64, batch=8, train_steps=3,
                                dt_ms=2.0, weights=(0.0, 0.1, 1.0))  # fmt: skip

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _TradeoffResult:
        return _TradeoffResult(self, settings, tradeoff_study(settings, progress))
