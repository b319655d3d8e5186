"""Study 000, "Case 1: Short Timeframe": does a larger perturbation std give a better
regression estimate of the output-layer gradient of the 784-100-10 HH MNIST network, and
better against what? (weakgrad issue 16, finding 4.)

The study compared the regression estimate with the autodiff gradient at the point and
found "using a larger standard deviation actually gives significantly better results"
(std 0.15). A regression on Gaussian perturbations of std ``sigma`` estimates, as ``S``
grows, the gradient of the Gaussian-smoothed loss ``E_eps L(theta + sigma eps)`` (Stein's
lemma: the least-squares slope tends to ``E[eps L(theta + sigma eps)] / sigma``), not the
gradient at the point. :class:`SigmaReferences` therefore measures every estimate against
two references per sigma, both of the very loss the regression samples (on the noisy network
the same trials' noise, as autodiff of the single-trial loss was in the study):

- ``autodiff``: the autodiff gradient at the point (what the study compared with); exact.
- ``smoothed``: the gradient of the smoothed loss at that sigma, the mean of
  ``reference_draws`` autodiff gradients at ``theta +- sigma eps`` (antithetic pairs:
  each pair's mean is an unbiased draw whose first-order term cancels), with its
  Monte-Carlo standard error.

and a third, ``expected``: the gradient of the expected loss over the neurons' noise (the
mean of ``reference_draws`` autodiff gradients of the whole network over fresh noise, with
its standard error; on the noise-free network the autodiff gradient), which shows what
averaging trials buys.

Grid: sigma x S x readout (graded release, mean voltage) x trial averaging. The noise-free
network is deterministic (one "trial"); the noisy one (``noise_std`` uA/cm^2 per neuron
and step, as in the landscape experiments) has its loss averaged over ``k`` noisy trials
for each ``k`` of ``trials``.

The design is nested so that every comparison is paired and each network is compiled
once: per repeat one draw of ``max(samples)`` perturbation directions ``Z`` and of the
trials' noise; the losses at ``theta + sigma Z`` (the same ``Z`` for every sigma, the same
noise for every perturbation: the common random numbers of
:class:`~weakgrad.estimators.Regression`) for every trial; the estimate at ``S`` and
``k`` is :func:`~weakgrad.estimators.regression.regression_slope` on the first ``S`` rows
and the mean of the first ``k`` trials, which is what ``Regression(samples=S)`` computes
on those rows. Only the output layer is simulated per perturbation: the hidden layer's
output is recorded once per trial (:meth:`~weakgrad.objectives.network.NetworkObjective.
tail`). The compared parameters are the study's 1,000 output weights (biases held).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weakgrad.experiments.base import (
    AbstractExperiment,
    ExperimentResult,
    ExperimentSettings,
    positive_float,
    positive_int,
)
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "SigmaReferencesSettings",
    "SigmaReferencesResult",
    "SigmaReferences",
    "antithetic_mean",
    "summarize",
    "sigma_cells",
    "check_larger_sigma_vs_autodiff",
    "check_larger_sigma_vs_smoothed",
    "plot_sigma_references",
]

SECTION = "Case 1: Short Timeframe"
# "autodiff" and "smoothed": of the loss the regression sees (its trials' noise; exact on the
# noise-free network); "expected": autodiff of the expected loss (mean over noise draws).
REFERENCES = ("autodiff", "smoothed", "expected")
# Regression's default Cholesky jitter (relative to the mean Gram diagonal): keeps the fit
# finite near S = d + 1, as the estimator does.
RIDGE = 1e-6
# "Significantly better" (fixed before any run, as hh-short-gradient's check): the error at
# the wide sigma at most this fraction of the error at the narrow one ...
BETTER_RATIO = 0.5
# ... and lower by more than this many combined standard errors (repeats and references).
BETTER_SE = 2.0
ROW_COLUMNS = (
    "readout", "noise", "trials", "sigma", "samples", "repeat", "reference", "rel_error",
    "cosine",
)  # fmt: skip
REFERENCE_COLUMNS = (
    "readout", "noise", "trials", "sigma", "smoothed_pairs", "expected_draws", "autodiff_se",
    "smoothed_se", "expected_se",
    "smoothed_vs_autodiff", "smoothed_vs_autodiff_cosine", "autodiff_vs_expected",
    "autodiff_norm", "smoothed_norm", "expected_norm",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SigmaReferencesSettings(ExperimentSettings):
    """The sigma experiment's grid.

    Attributes:
        sigmas: perturbation stds of the output weights (weight units; the initial weights
            have std 3); must hold ``narrow_sigma`` and ``wide_sigma``.
        samples: the S grid (perturbed runs per estimate; d = 1,000 weights).
        readouts: "release" (mean graded release, the study's) and/or "voltage" (mean
            membrane potential).
        trials: noisy trials averaged per loss on the noisy network; empty: the noise-free
            network only.
        noise_std: the noisy network's current noise (uA/cm^2 per neuron and step).
        reference_draws: M, autodiff gradients per smoothed reference (per repeat and
            sigma; even: antithetic pairs) and per expected-loss reference.
        repeats: independent estimates per grid point (fresh perturbations and noise).
        narrow_sigma, wide_sigma: the claims' comparison (the study's 0.15 against the
            small std of hh-short-gradient's S sweep).
        batch: digits; duration_ms, dt_ms: the simulation (ms).
        chunk, grad_chunk: perturbed runs (gradients) evaluated at once (memory, not
            results).
    """

    sigmas: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.05, 0.1, 0.15, 0.3)
    samples: tuple[int, ...] = (10, 100, 300, 1100, 2000)
    readouts: tuple[str, ...] = ("release", "voltage")
    trials: tuple[int, ...] = (1, 4)
    noise_std: float = 5.0
    reference_draws: int = 256
    repeats: int = 3
    narrow_sigma: float = 0.01
    wide_sigma: float = 0.15
    batch: int = 10
    duration_ms: float = 10.0
    dt_ms: float = 0.05
    chunk: int = 256
    grad_chunk: int = 16

    def __post_init__(self) -> None:
        from weakgrad.errors import ConfigError
        from weakgrad.registry import HH_READOUTS

        for name in ("reference_draws", "repeats", "batch", "chunk", "grad_chunk"):
            positive_int(name, getattr(self, name))
        for name in ("noise_std", "narrow_sigma", "wide_sigma", "duration_ms", "dt_ms"):
            positive_float(name, getattr(self, name))
        for name in ("sigmas", "samples", "readouts"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is empty; give at least one value.")
        for v in self.sigmas:
            positive_float("sigmas", v)
        for v in self.samples:
            positive_int("samples", v)
        for v in self.trials:
            positive_int("trials", v)
        if min(self.samples) < 2:
            raise ConfigError(f"samples = {self.samples}: every S must be >= 2 (a fit needs two).")
        if self.repeats < 2:
            raise ConfigError(
                f"repeats = {self.repeats} must be >= 2 (the claims need error bars)."
            )
        if self.reference_draws % 2 or self.reference_draws < 4:
            raise ConfigError(
                f"reference_draws = {self.reference_draws} must be even and >= 4 (antithetic "
                "pairs, at least two for a standard error); e.g. "
                f"{max(4, self.reference_draws + 1)}."
            )
        bad = [r for r in self.readouts if r not in HH_READOUTS]
        if bad:
            raise ConfigError(f"readouts: unknown {bad}; choose from {', '.join(HH_READOUTS)}.")
        for name in ("narrow_sigma", "wide_sigma"):
            if not np.isclose(self.sigmas, getattr(self, name)).any():
                raise ConfigError(
                    f"{name} = {getattr(self, name)} is not in sigmas = {self.sigmas}; add it."
                )
        if not self.narrow_sigma < self.wide_sigma:
            raise ConfigError(
                f"narrow_sigma = {self.narrow_sigma} must be below wide_sigma = {self.wide_sigma}."
            )
        if not (self.dt_ms > 0 and self.duration_ms >= self.dt_ms):
            raise ConfigError(
                f"duration_ms = {self.duration_ms} must be at least dt_ms = {self.dt_ms}."
            )

    @property
    def conditions(self) -> tuple[tuple[float, int], ...]:
        """(noise uA/cm^2, trials averaged): the noise-free network, then the noisy one per
        trial count."""
        return ((0.0, 1),) + tuple((float(self.noise_std), int(k)) for k in self.trials)


# --- numerics ------------------------------------------------------------------------------


def antithetic_mean(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``g`` ``(2 P, d)``: gradients at ``+offsets`` then at ``-offsets``; the mean of the
    pairs' means ``(g(+) + g(-)) / 2`` and its standard error per coordinate (0 for one
    pair)."""
    p = g.shape[0] // 2
    pairs = 0.5 * (g[:p] + g[p:])
    se = pairs.std(0, ddof=1) / np.sqrt(p) if p > 1 else np.zeros(pairs.shape[1])
    return pairs.mean(0), se


def _relative_se(se: np.ndarray, ref: np.ndarray) -> float:
    """|se| / |ref|: the reference's own relative error (its Monte-Carlo noise)."""
    n = float(np.linalg.norm(ref))
    return float(np.linalg.norm(se) / n) if n > 0 else float("nan")


@functools.cache
def _compiled() -> Any:
    """The compiled pieces (built on first use: importing this module starts no JAX, so
    listing the experiments stays fast). Each compiles once per network and shape."""
    import types

    import equinox as eqx
    import jax

    from weakgrad.estimators.regression import regression_slope

    @eqx.filter_jit
    def weight_grads(obj, params, offsets, keys, chunk: int):
        """Autodiff gradients ``(n, d)`` of the loss with respect to the output weights at
        ``W + offsets[i]`` (biases held) for noise ``keys[i]``, ``chunk`` at once."""
        w0, bias = params[1]["weight"], params[1]["bias"]

        def one(a):
            off, k = a
            return jax.grad(lambda w: obj((params[0], {"weight": w, "bias": bias}), k))(
                w0 + off
            ).ravel()

        return jax.lax.map(one, (offsets, keys), batch_size=min(chunk, offsets.shape[0]))

    @eqx.filter_jit
    def hidden_trials(obj, params, keys):
        """What the hidden layer sends ``(T, B, steps, n)`` and its validity ``(T, B)``, one
        trial per key."""

        def one(k):
            t = obj.tail(params, k, 1)
            return t.inputs, t.head_valid

        return jax.vmap(one)(keys)

    @eqx.filter_jit
    def trial_losses(tail, bias, weights, key, trials: int, chunk: int):
        """Losses ``(n, trials)``: each trial's batch-mean loss at each of ``weights``
        ``(n, ...)``, every run with the same output-layer noise key (common random
        numbers, as Regression's default)."""

        def one(w):
            per = tail.per_example(({"weight": w, "bias": bias},), key)
            return per.reshape(trials, -1).mean(1)

        return jax.lax.map(one, weights, batch_size=min(chunk, weights.shape[0]))

    @eqx.filter_jit
    def trial_grads(tail, bias, w0, offsets, key, trials: int, chunk: int):
        """Each trial's gradient ``(n, trials, d)`` with respect to the output weights at
        ``w0 + offsets[i]``, with the losses' noise (``trial_losses``)."""

        def one(off):
            def losses(w):
                per = tail.per_example(({"weight": w, "bias": bias},), key)
                return per.reshape(trials, -1).mean(1)

            return jax.jacrev(losses)(w0 + off).reshape(trials, -1)

        return jax.lax.map(one, offsets, batch_size=min(chunk, offsets.shape[0]))

    @eqx.filter_jit
    def slope(z, y):
        return regression_slope(z, y, ridge=RIDGE)

    return types.SimpleNamespace(
        weight_grads=weight_grads, hidden_trials=hidden_trials, trial_losses=trial_losses,
        trial_grads=trial_grads, slope=slope,
    )  # fmt: skip


def _trial_tail(obj: Any, params: Any, keys: Any) -> Any:
    """The output layer as an objective whose batch is ``len(keys)`` noisy trials of the
    batch (trial-major): the hidden layer recorded once per trial with its key."""
    import jax.numpy as jnp

    from weakgrad.objectives.network import TailObjective
    from weakgrad.sim.network import Network

    inputs, valid = _compiled().hidden_trials(obj, params, keys)
    k = keys.shape[0]
    return TailObjective(
        Network(obj.net.layers[1:]), inputs.reshape((-1,) + inputs.shape[2:]),
        jnp.tile(obj.targets, (k,) + (1,) * (obj.targets.ndim - 1)), obj.loss, obj.dt,
        obj.steps, obj.read, first=1, head_valid=valid.reshape(-1),
    )  # fmt: skip


def _condition_rows(
    s: SigmaReferencesSettings, obj: Any, readout: str, noise: float, keys: Any, progress
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every estimate's errors against the references, and the references, for one readout
    and one network (noise-free or noisy)."""
    import jax
    import jax.numpy as jnp

    from weakgrad.analysis.diagnostics import gradient_error

    fns = _compiled()
    params = obj.params()
    w0, bias = params[1]["weight"], params[1]["bias"]
    d = int(w0.size)
    k_expected, k_reg = jax.random.split(keys)
    pairs = s.reference_draws // 2
    # The gradient of the expected loss: autodiff averaged over fresh noise (whole network).
    draws = s.reference_draws if noise > 0 else 1  # the noise-free network: one exact run
    g = fns.weight_grads(obj, params, jnp.zeros((draws,) + w0.shape, w0.dtype),
                         jax.random.split(k_expected, draws), s.chunk)  # fmt: skip
    g = np.asarray(g, np.float64)
    expected = g.mean(0)
    expected_se = g.std(0, ddof=1) / np.sqrt(draws) if draws > 1 else np.zeros(d)
    trial_counts = sorted({k for nz, k in s.conditions if nz == noise})
    top, top_k = max(s.samples), max(trial_counts)
    rows: list[dict[str, Any]] = []
    ref_acc: dict[tuple[int, float], list[dict[str, float]]] = {}
    for r, k_r in enumerate(jax.random.split(k_reg, s.repeats)):
        k_z, k_hidden, k_out, k_eps = jax.random.split(k_r, 4)
        z = jax.random.normal(k_z, (top, d), w0.dtype)
        eps = jax.random.normal(k_eps, (pairs,) + w0.shape, w0.dtype)
        tail = _trial_tail(obj, params, jax.random.split(k_hidden, top_k))

        def trial_grads(offsets, tail=tail, k_out=k_out):
            # (n, top_k, d): each trial's gradient at W + offset, the regression's noise
            return np.asarray(fns.trial_grads(tail, bias, w0, offsets, k_out, top_k,
                                              s.grad_chunk), np.float64)  # fmt: skip

        for sigma in s.sigmas:
            weights = w0 + sigma * z.reshape((top,) + w0.shape)
            y = fns.trial_losses(tail, bias, weights, k_out, top_k, s.chunk)
            # the point first, then the pairs: one compiled shape for both references
            g = trial_grads(jnp.concatenate([jnp.zeros_like(eps[:1]), sigma * eps, -sigma * eps]))
            point_all, pm = g[0], g[1:]
            for k in trial_counts:
                yk = y[:, :k].mean(1)
                point = point_all[:k].mean(0)
                smoothed, smoothed_se = antithetic_mean(pm[:, :k].mean(1))
                refs = {"autodiff": point, "smoothed": smoothed, "expected": expected}
                dist, cos = gradient_error(smoothed, point)
                ref_acc.setdefault((k, float(sigma)), []).append({
                    "smoothed_se": _relative_se(smoothed_se, smoothed),
                    "smoothed_vs_autodiff": dist, "smoothed_vs_autodiff_cosine": cos,
                    "autodiff_vs_expected": gradient_error(point, expected)[0],
                    "autodiff_norm": float(np.linalg.norm(point)),
                    "smoothed_norm": float(np.linalg.norm(smoothed)),
                })  # fmt: skip
                for n in s.samples:
                    est = np.asarray(fns.slope(z[:n], yk[:n]), np.float64) / sigma
                    for name in REFERENCES:
                        rel, cos = gradient_error(est, refs[name])
                        rows.append({
                            "readout": readout, "noise": noise, "trials": k,
                            "sigma": float(sigma), "samples": int(n), "repeat": r,
                            "reference": name, "rel_error": rel, "cosine": cos,
                        })  # fmt: skip
            if progress is not None:
                progress(1)
    ref_rows = []
    for (k, sigma), acc in sorted(ref_acc.items()):
        row: dict[str, Any] = {
            "readout": readout, "noise": noise, "trials": k, "sigma": sigma,
            # autodiff at the point is exact; the expected loss's draws: 1 without noise
            "smoothed_pairs": pairs, "expected_draws": draws, "autodiff_se": 0.0,
            "expected_se": _relative_se(expected_se, expected),
            "expected_norm": float(np.linalg.norm(expected)),
        }  # fmt: skip
        for col in acc[0]:
            row[col] = float(np.mean([a[col] for a in acc]))  # mean over repeats
        ref_rows.append(row)
    return rows, ref_rows


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard error over repeats of the relative error and cosine per
    (readout, noise, trials, sigma, samples, reference)."""
    keys = ("readout", "noise", "trials", "sigma", "samples", "reference")
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["repeats"] = len(rs)
        for col in ("rel_error", "cosine"):
            v = np.asarray([r[col] for r in rs], np.float64)
            row[col] = float(np.mean(v))
            row[col + "_sem"] = (
                float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
            )
        out.append(row)
    return out


def condition_label(noise: float, trials: int) -> str:
    """``noise-free`` or ``noise 5, 4 trials``."""
    if noise == 0:
        return "noise-free"
    return f"noise {noise:g}, {trials} trial" + ("s" if trials != 1 else "")


# --- claims --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SigmaCell:
    """One (readout, condition, S) of the grid against one reference: the mean errors at the
    narrow and the wide sigma, the band they must differ by, the sigma of least error."""

    readout: str
    noise: float
    trials: int
    samples: int
    narrow: float
    wide: float
    band: float
    best_sigma: float

    @property
    def better(self) -> bool:
        """The wide sigma "significantly better": at most BETTER_RATIO of the narrow one's
        error and lower by more than the band."""
        return bool(self.wide <= BETTER_RATIO * self.narrow and self.narrow - self.wide > self.band)

    def label(self) -> str:
        return f"{self.readout}/{condition_label(self.noise, self.trials)}/S={self.samples}"


def sigma_cells(data: Mapping[str, Any], reference: str) -> list[SigmaCell]:
    """Per (readout, condition, S), the narrow vs wide sigma comparison against
    ``reference``; the band is ``BETTER_SE`` times the combined standard error of the two
    means over repeats and of the two references' Monte-Carlo errors (relative)."""
    lo, hi = float(data["narrow_sigma"]), float(data["wide_sigma"])
    ref_se = {
        (r["readout"], float(r["noise"]), int(r["trials"]), float(r["sigma"])):
            float(r[f"{reference}_se"])
        for r in data["references"]
    }  # fmt: skip
    by_cell: dict[tuple, dict[float, Mapping[str, Any]]] = {}
    for r in data["summary"]:
        if r["reference"] == reference:
            key = (r["readout"], float(r["noise"]), int(r["trials"]), int(r["samples"]))
            by_cell.setdefault(key, {})[float(r["sigma"])] = r
    cells = []
    for (readout, noise, trials, n), by_sigma in by_cell.items():
        sig = np.asarray(sorted(by_sigma))
        il, ih = np.flatnonzero(np.isclose(sig, lo)), np.flatnonzero(np.isclose(sig, hi))
        if il.size == 0 or ih.size == 0:
            continue
        rl, rh = by_sigma[float(sig[il[0]])], by_sigma[float(sig[ih[0]])]
        se = [
            rl["rel_error_sem"], rh["rel_error_sem"],
            ref_se.get((readout, noise, trials, float(sig[il[0]])), np.nan),
            ref_se.get((readout, noise, trials, float(sig[ih[0]])), np.nan),
        ]  # fmt: skip
        band = BETTER_SE * float(np.sqrt(np.sum(np.square(np.nan_to_num(se)))))
        errs = np.asarray([by_sigma[float(v)]["rel_error"] for v in sig], np.float64)
        best = float(sig[int(np.argmin(np.nan_to_num(errs, nan=np.inf)))])
        cells.append(SigmaCell(readout, noise, trials, n, float(rl["rel_error"]),
                               float(rh["rel_error"]), band, best))  # fmt: skip
    return sorted(cells, key=lambda c: (c.readout, c.noise, c.trials, c.samples))


def _check_larger_sigma(data: Mapping[str, Any], reference: str) -> tuple[Verdict, str]:
    cells = sigma_cells(data, reference)
    lo, hi = float(data["narrow_sigma"]), float(data["wide_sigma"])
    if not cells:
        return Verdict.NOT_REPRODUCED, f"no grid cell has both sigma {lo:g} and {hi:g}"
    d = int(data["parameters"])
    main = [c for c in cells if c.samples > d] or cells
    main_better = [c for c in main if c.better]
    better = [c for c in cells if c.better]
    scope = f"S > d = {d}" if any(c.samples > d for c in cells) else "every S (none above d)"
    measured = (
        f"vs {reference}: error at sigma {hi:g} at most {BETTER_RATIO:g} x the error at "
        f"{lo:g} and lower by > {BETTER_SE:g} s.e. in {len(main_better)}/{len(main)} cells "
        f"with {scope}, {len(better)}/{len(cells)} overall"
        + (f" ({', '.join(c.label() for c in better)})" if better else "")
        + f"; error at {lo:g} -> {hi:g} (best sigma): "
        + "; ".join(f"{c.label()}: {c.narrow:.3g} -> {c.wide:.3g} ({c.best_sigma:g})"
                    for c in cells)
    )  # fmt: skip
    if 2 * len(main_better) >= len(main):
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if better else Verdict.NOT_REPRODUCED), measured


def check_larger_sigma_vs_autodiff(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Against the autodiff gradient at the point (the study's reference): per (readout,
    condition, S) the wide sigma "significantly better" (error at most half the narrow
    sigma's, lower by more than 2 combined s.e.). Reproduced in at least half the cells
    with S > d (the study's S = 1,100 regime; every cell if none); partly in at least one
    cell anywhere (a regime); otherwise not reproduced."""
    return _check_larger_sigma(data, "autodiff")


def check_larger_sigma_vs_smoothed(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """The same measure against the gradient of the Gaussian-smoothed loss at each sigma
    (what a perturbation of that std estimates)."""
    return _check_larger_sigma(data, "smoothed")


_MEASURES = (
    "the 1,000 output weights of the HH network (10 ms), regression on S perturbations, the "
    "references of the same loss (the same noisy trials on the noisy network); per "
    "(readout, noise/trials condition, S): the mean relative L2 error at sigma 0.15 at most "
    "half of that at sigma 0.01 and lower by more than 2 combined standard errors (repeats "
    "and the reference's Monte-Carlo error) = better there. Reproduced: better in at least "
    "half the cells with S > d (the study's S = 1,100); partly: better in at least one cell "
    "(the regime is listed); otherwise not reproduced."
)
LARGER_SIGMA_AUTODIFF = Claim(
    id="hh-larger-sigma-better-vs-autodiff",
    section=SECTION,
    claim="Using a larger standard deviation actually gives significantly better results "
    "(regression estimate of the output-layer gradient compared with autodiff).",
    measures="against the autodiff gradient at the point (the study's reference); " + _MEASURES,
    check=check_larger_sigma_vs_autodiff,
)
LARGER_SIGMA_SMOOTHED = Claim(
    id="hh-larger-sigma-better-vs-smoothed",
    section=SECTION,
    claim="Using a larger standard deviation actually gives significantly better results "
    "(judged against the gradient of the Gaussian-smoothed loss at that standard deviation, "
    "which is what a wider perturbation estimates).",
    measures="against the mean of autodiff gradients at theta +- sigma eps (antithetic "
    "pairs) at each sigma; " + _MEASURES,
    check=check_larger_sigma_vs_smoothed,
)


# --- result and figures --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SigmaReferencesResult(ExperimentResult):
    """``data``: ``summary`` (mean and s.e. per grid point and reference), ``references``
    (per readout, condition and sigma, means over repeats: the references' relative
    Monte-Carlo errors, norms and distances), ``rows`` (every estimate), ``parameters``
    (d), the claims' two sigmas."""

    experiment: AbstractExperiment
    settings: SigmaReferencesSettings
    data: Mapping[str, Any]

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json

        write_csv(folder / "estimates.csv", ROW_COLUMNS,
                  ([r[c] for c in ROW_COLUMNS] for r in self.data["rows"]))  # fmt: skip
        write_csv(folder / "references.csv", REFERENCE_COLUMNS,
                  ([r[c] for c in REFERENCE_COLUMNS] for r in self.data["references"]))  # fmt: skip
        write_json(folder / "summary.json", {
            "parameters": int(self.data["parameters"]), "summary": self.data["summary"],
            "references": self.data["references"],
        })  # fmt: skip

    def figures(self) -> dict[str, Any]:
        s = self.settings
        figs = {}
        for noise, trials in s.conditions:
            name = "error_vs_sigma_noise_free" if noise == 0 else (
                f"error_vs_sigma_noise_{trials}_trials"
            )  # fmt: skip
            figs[name] = plot_sigma_references(
                self.data, noise=noise, trials=trials,
                title=f"HH 784-100-10, {s.duration_ms:g} ms at dt {s.dt_ms:g} ms, output "
                f"weights (d = {self.data['parameters']}), batch {s.batch}, "
                + ("noise-free" if noise == 0 else
                   f"noise {noise:g} uA/cm^2 per step, loss averaged over {trials} trial(s)"),
            )  # fmt: skip
        figs["references"] = plot_reference_distance(self.data)
        return figs


def _log_if_positive(ax: Any, values: Sequence[float]) -> None:
    """A log y axis where some value is positive and finite (else matplotlib refuses it:
    a noise-free reference's s.e. is 0, a blown-up run NaN)."""
    v = np.asarray(values, np.float64)
    if np.any(np.isfinite(v) & (v > 0)):
        ax.set_yscale("log")


def plot_sigma_references(
    data: Mapping[str, Any], *, noise: float, trials: int, title: str = ""
) -> Any:
    """Relative error and cosine of the regression estimate against sigma, one curve per S
    (sequential colours); rows: the references, columns: readout x (error, cosine); each
    reference's own relative Monte-Carlo error dotted in black (the floor a noisy reference
    sets on the error)."""
    import matplotlib.pyplot as plt

    rows = [r for r in data["summary"] if float(r["noise"]) == noise and r["trials"] == trials]
    readouts = sorted({r["readout"] for r in rows})
    samples = sorted({int(r["samples"]) for r in rows})
    sigmas = [float(r["sigma"]) for r in rows] or [1.0]
    cmap = plt.get_cmap("viridis")
    colour = {n: cmap(0.9 * i / max(len(samples) - 1, 1)) for i, n in enumerate(samples)}
    fig, axes = plt.subplots(
        len(REFERENCES), 2 * len(readouts), squeeze=False, layout="constrained",
        figsize=(4.2 * 2 * len(readouts), 3.2 * len(REFERENCES)),
    )  # fmt: skip
    for i, ref in enumerate(REFERENCES):
        for j, readout in enumerate(readouts):
            ax_e, ax_c = axes[i, 2 * j], axes[i, 2 * j + 1]
            panel = [r for r in rows if r["reference"] == ref and r["readout"] == readout]
            for n in samples:
                pts = sorted((r for r in panel if int(r["samples"]) == n), key=lambda r: r["sigma"])
                x = [r["sigma"] for r in pts]
                for ax, col in ((ax_e, "rel_error"), (ax_c, "cosine")):
                    ax.errorbar(
                        x, [r[col] for r in pts],
                        yerr=np.nan_to_num([r[col + "_sem"] for r in pts]), color=colour[n],
                        marker="o", ms=3, capsize=2, label=f"S = {n}",
                    )  # fmt: skip
            floor = sorted(
                (r for r in data["references"] if r["readout"] == readout
                 and float(r["noise"]) == noise and r["trials"] == trials),
                key=lambda r: r["sigma"],
            )  # fmt: skip
            se = np.asarray([r[f"{ref}_se"] for r in floor], np.float64)
            if se.size and np.nanmax(se) > 0:
                ax_e.plot([r["sigma"] for r in floor], se, "k:", lw=1.2,
                          label="reference's own s.e.")  # fmt: skip
            _log_if_positive(ax_e, [r["rel_error"] for r in panel])
            ax_e.set_ylabel(f"rel. L2 error vs {ref}")
            ax_c.set_ylabel(f"cosine with {ref}")
            ax_c.set_ylim(-1.05, 1.05)
            for ax in (ax_e, ax_c):
                ax.set_xscale("log")
                ax.set_xlim(min(sigmas) / 1.5, max(sigmas) * 1.5)  # a panel may be all NaN
                ax.set_xlabel("perturbation std sigma (weight units)")
                ax.set_title(f"{readout} readout, reference: {ref}", fontsize=9)
                ax.grid(alpha=0.3)
    for ax in axes[:, 0]:  # the S colours, and the dotted floor where a row has one
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_reference_distance(data: Mapping[str, Any]) -> Any:
    """Left: how far the smoothed-loss gradient is from the autodiff gradient of the same
    loss (relative L2 distance, mean over repeats) against sigma, per readout and condition,
    dotted: the smoothed reference's own relative Monte-Carlo error. Right: how far one
    loss's autodiff gradient (its trials' noise) is from the expected loss's, against the
    trials averaged, dotted: the expected reference's own error."""
    import matplotlib.pyplot as plt

    refs = data["references"]
    groups = sorted({(r["readout"], float(r["noise"]), int(r["trials"])) for r in refs})
    cmap = plt.get_cmap("tab10")
    fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(13, 4.8), layout="constrained")
    for i, (readout, noise, trials) in enumerate(groups):
        pts = sorted((r for r in refs if (r["readout"], float(r["noise"]), r["trials"])
                      == (readout, noise, trials)), key=lambda r: r["sigma"])  # fmt: skip
        x = [r["sigma"] for r in pts]
        label = f"{readout}, {condition_label(noise, trials)}"
        ax.plot(x, [r["smoothed_vs_autodiff"] for r in pts], "-o", ms=3, color=cmap(i % 10),
                label=label)  # fmt: skip
        ax.plot(x, [r["smoothed_se"] for r in pts], ":", color=cmap(i % 10))
    ax.plot([], [], "k:", label="dotted: the smoothed reference's s.e.")
    ax.set_xscale("log")
    _log_if_positive(ax, [r[c] for r in refs for c in ("smoothed_vs_autodiff", "smoothed_se")])
    ax.set_xlabel("perturbation std sigma (weight units)")
    ax.set_ylabel("|smoothed - autodiff| / |autodiff|")
    ax.set_title("Gradient of the smoothed loss vs autodiff at the point", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    noisy = [r for r in refs if float(r["noise"]) > 0]
    for i, readout in enumerate(sorted({r["readout"] for r in noisy})):
        by_k = {int(r["trials"]): r for r in noisy if r["readout"] == readout}
        ks = sorted(by_k)
        ax_t.plot(ks, [by_k[k]["autodiff_vs_expected"] for k in ks], "-o", ms=4,
                  color=cmap(i % 10), label=f"{readout}")  # fmt: skip
        ax_t.plot(ks, [by_k[k]["expected_se"] for k in ks], ":", color=cmap(i % 10),
                  label=f"{readout}: the expected reference's s.e.")  # fmt: skip
    if noisy:
        ax_t.set_xscale("log", base=2)
        trial_ticks = sorted({int(r["trials"]) for r in noisy})
        ax_t.set_xticks(trial_ticks, [str(k) for k in trial_ticks])
    else:
        ax_t.text(0.5, 0.5, "no noisy network in this run (trials = ())", ha="center",
                  transform=ax_t.transAxes)  # fmt: skip
    _log_if_positive(ax_t, [r["autodiff_vs_expected"] for r in noisy])
    ax_t.set_xlabel("noisy trials averaged in the loss")
    ax_t.set_ylabel("|autodiff - expected| / |expected|")
    ax_t.set_title("One loss's autodiff gradient vs the expected loss's (noisy network)",
                   fontsize=10)  # fmt: skip
    ax_t.grid(alpha=0.3)
    if noisy:
        ax_t.legend(fontsize=7, loc="best")
    return fig


# --- the experiment ------------------------------------------------------------------------


class SigmaReferences(AbstractExperiment):
    """Regression error against sigma on the HH network's output weights, against autodiff
    at the point and against the smoothed-loss gradient, over S, readout and trials."""

    name = "hh-sigma-references"
    title = "HH network (10 ms): does a larger sigma help, against autodiff and the smoothed loss?"
    section = SECTION
    claims = (LARGER_SIGMA_AUTODIFF, LARGER_SIGMA_SMOOTHED)

    def quick(self) -> SigmaReferencesSettings:
        # 5 sigmas, S up to 2 d, 1 and 4 noisy trials, M = 64, 2 repeats: 157 s measured
        # on 2 shared cores (+7 s writing); the full preset 460 s.
        return SigmaReferencesSettings(
            sigmas=(0.001, 0.01, 0.05, 0.15, 0.3), samples=(10, 100, 1100, 2000),
            trials=(1, 4), reference_draws=64, repeats=2,
        )  # fmt: skip

    def full(self) -> SigmaReferencesSettings:
        return SigmaReferencesSettings()

    def tiny(self) -> SigmaReferencesSettings:
        # One readout (the other differs only in the readout class), 4 ms at dt 0.2 ms (the
        # hidden layer fires, so the output weights matter), the noise-free network and 2
        # noisy trials.
        return SigmaReferencesSettings(
            sigmas=(0.01, 0.15), samples=(3, 6), readouts=("release",), trials=(2,),
            reference_draws=4, repeats=2, batch=2, duration_ms=4.0, dt_ms=0.2,
        )  # fmt: skip

    def run(
        self, settings: SigmaReferencesSettings, *, progress: Callable[[int], None] | None = None
    ) -> SigmaReferencesResult:
        import jax

        from weakgrad.sim.neurons import HodgkinHuxley
        from weakgrad.tasks.mnist import load_mnist, mnist_network, mnist_objective

        s = settings
        data = load_mnist(None, seed=s.seed)
        x, y = data.x_train[: s.batch], data.y_train[: s.batch]
        # The network and batch of hh-short-gradient at the same seed (gradcheck_study's
        # key split); the rest of the randomness from its second key.
        k_net, k_check = jax.random.split(jax.random.key(s.seed))
        noises = sorted({noise for noise, _ in s.conditions})
        rows, refs = [], []
        for readout in s.readouts:
            for noise, k in zip(noises, jax.random.split(k_check, len(noises)), strict=True):
                net = mnist_network("hh", key=k_net, hh=HodgkinHuxley(noise_std=noise))
                obj = mnist_objective(
                    "hh", x, y, key=k_net, duration_ms=s.duration_ms, dt_ms=s.dt_ms,
                    readout=readout, net=net,
                )  # fmt: skip
                r, f = _condition_rows(s, obj, readout, noise, k, progress)
                rows += r
                refs += f
        d = int(np.size(obj.params()[1]["weight"]))
        result = {
            "parameters": d, "narrow_sigma": s.narrow_sigma, "wide_sigma": s.wide_sigma,
            "summary": summarize(rows), "references": refs, "rows": rows,
        }  # fmt: skip
        return SigmaReferencesResult(self, s, result)
