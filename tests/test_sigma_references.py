"""The sigma experiment (weakgrad.experiments.sigma_references): the smoothed-loss reference
against closed forms (a Gaussian-smoothed cubic and quadratic) and against autodiff as
sigma -> 0, both claims' checks on data made to pass and made to fail them, the settings'
errors. The tiny preset runs in tests/test_experiments.py (with the checks of
``check_tiny_run`` below: one tiny run for both)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.errors import ConfigError
from weakgrad.experiments import Verdict
from weakgrad.experiments.base import RESULT_FILE
from weakgrad.experiments.sigma_references import (
    SigmaReferencesSettings,
    antithetic_mean,
    check_larger_sigma_vs_autodiff,
    check_larger_sigma_vs_smoothed,
    sigma_cells,
    summarize,
)

D = 1000


# --- the smoothed-loss reference -------------------------------------------------------------


def _batched_grad(f):
    """``(offsets (n, d), keys (n,)) -> (n, d)`` gradients of ``f`` at ``w + offset``."""

    def at(w):
        return jax.vmap(lambda off, key: jax.grad(f)(w + off))

    return at


def _pairs(p, d, seed=0):
    eps = jax.random.normal(jax.random.key(seed), (p, d), jnp.float64)
    return eps, jax.random.split(jax.random.key(seed + 1), p)


def smoothed_gradient(grad, offsets, keys):
    """The smoothed-loss gradient and its standard error from gradients at +-offsets (the
    experiment's layout: every + then every -, a pair sharing its key) by antithetic_mean."""
    both, keys2 = jnp.concatenate([offsets, -offsets]), jnp.concatenate([keys, keys])
    return antithetic_mean(np.asarray(grad(both, keys2), np.float64))


@jax.enable_x64(True)
def test_smoothed_gradient_of_a_cubic_is_its_closed_form():
    # f = sum(w^3) / 3: grad w^2; the Gaussian-smoothed gradient E (w + sigma eps)^2 is
    # w^2 + sigma^2 (exactly, whatever w): the reference must find the sigma^2 shift.
    w = jnp.asarray([0.5, -1.0, 2.0, 0.0], jnp.float64)
    sigma = 0.3
    eps, keys = _pairs(4000, w.size)
    mean, se = smoothed_gradient(_batched_grad(lambda v: jnp.sum(v**3) / 3)(w), sigma * eps, keys)
    want = np.asarray(w) ** 2 + sigma**2
    assert np.all(np.abs(mean - want) <= 4 * se)
    # the shift is resolved: far more than the standard error away from autodiff's w^2
    assert np.all(np.abs(mean - np.asarray(w) ** 2) > 10 * se)
    # pair means (w^2 + sigma^2 eps^2) have std sigma^2 sqrt(2): the s.e. says so
    np.testing.assert_allclose(se, sigma**2 * np.sqrt(2 / 4000), rtol=0.1)


@jax.enable_x64(True)
def test_smoothed_gradient_of_a_quadratic_is_exact_with_antithetic_pairs():
    a = jnp.asarray([[2.0, 0.5], [0.5, 1.0]], jnp.float64)
    b = jnp.asarray([0.3, -0.7], jnp.float64)
    w = jnp.asarray([1.0, -2.0], jnp.float64)
    eps, keys = _pairs(3, 2)
    grad = _batched_grad(lambda v: 0.5 * v @ a @ v + b @ v)(w)
    mean, se = smoothed_gradient(grad, 0.7 * eps, keys)
    np.testing.assert_allclose(mean, np.asarray(a @ w + b), rtol=1e-12)
    np.testing.assert_allclose(se, 0.0, atol=1e-12)


@jax.enable_x64(True)
def test_smoothed_gradient_tends_to_autodiff_as_sigma_shrinks():
    # A smooth, non-polynomial loss: the distance to autodiff falls like sigma^2.
    def f(v):
        return jnp.sum(jnp.sin(3 * v) * jnp.exp(-(v**2)))

    w = jnp.asarray([0.2, -0.4, 1.1], jnp.float64)
    exact = np.asarray(jax.grad(f)(w))
    eps, keys = _pairs(256, 3)
    grad = _batched_grad(f)(w)
    dist = [
        np.linalg.norm(smoothed_gradient(grad, s * eps, keys)[0] - exact) / np.linalg.norm(exact)
        for s in (0.1, 0.01, 0.001)
    ]
    assert dist[0] > 1e-3  # sigma 0.1 smooths visibly
    assert dist[1] < dist[0] / 30 and dist[2] < dist[1] / 30
    # the leading term: sigma^2 times the third-derivative scale (3^3 = 27 for sin(3 v))
    assert dist[2] < 30 * 0.001**2


# --- claims ----------------------------------------------------------------------------------


def _data(errors, *, sem=0.01, ref_se=0.0, samples=(100, 2000)):
    """Summary rows of one readout and the noise-free network for both references.

    ``errors``: reference -> S -> (error at sigma 0.01, error at sigma 0.15)."""
    summary = []
    for ref, by_s in errors.items():
        for n in samples:
            for sigma, e in zip((0.01, 0.15), by_s[n], strict=True):
                summary.append({
                    "readout": "release", "noise": 0.0, "trials": 1, "sigma": sigma,
                    "samples": n, "reference": ref, "repeats": 3, "rel_error": e,
                    "rel_error_sem": sem, "cosine": 0.5, "cosine_sem": 0.01,
                })  # fmt: skip
    references = [
        {"readout": "release", "noise": 0.0, "trials": 1, "sigma": s, "autodiff_se": 0.0,
         "smoothed_se": ref_se}
        for s in (0.01, 0.15)
    ]  # fmt: skip
    return {
        "parameters": D, "narrow_sigma": 0.01, "wide_sigma": 0.15, "summary": summary,
        "references": references,
    }  # fmt: skip


BETTER = {100: (1.0, 0.3), 2000: (1.0, 0.2)}  # wide sigma at most half, well beyond 2 s.e.
WORSE = {100: (1.0, 2.8), 2000: (0.3, 1.5)}  # weakgrad's hh-short-gradient direction
BELOW_D_ONLY = {100: (1.0, 0.3), 2000: (0.3, 1.5)}


@pytest.mark.parametrize(
    "check, ref", [(check_larger_sigma_vs_autodiff, "autodiff"),
                   (check_larger_sigma_vs_smoothed, "smoothed")],
)  # fmt: skip
def test_larger_sigma_checks_pass_fail_and_partly(check, ref):
    other = "smoothed" if ref == "autodiff" else "autodiff"
    # each check reads its own reference only: the other one's numbers are the opposite
    verdict, measured = check(_data({ref: BETTER, other: WORSE}))
    assert verdict is Verdict.REPRODUCED, measured
    assert "2/2 overall" in measured and "S=2000: 1 -> 0.2 (0.15)" in measured
    verdict, measured = check(_data({ref: WORSE, other: BETTER}))
    assert verdict is Verdict.NOT_REPRODUCED, measured
    assert "0/1 cells with S > d" in measured
    # better only below d: a regime, not the study's S = 1,100
    verdict, measured = check(_data({ref: BELOW_D_ONLY, other: WORSE}))
    assert verdict is Verdict.PARTLY, measured
    assert "release/noise-free/S=100" in measured


def test_larger_sigma_needs_more_than_the_error_bars():
    # Half the error but inside 2 combined standard errors: not "significantly" better.
    data = _data({"autodiff": BETTER, "smoothed": BETTER}, sem=0.3)
    assert check_larger_sigma_vs_autodiff(data)[0] is Verdict.NOT_REPRODUCED
    # A noisy smoothed reference widens that band (its Monte-Carlo error counts).
    data = _data({"autodiff": BETTER, "smoothed": BETTER}, ref_se=0.4)
    assert check_larger_sigma_vs_autodiff(data)[0] is Verdict.REPRODUCED
    assert check_larger_sigma_vs_smoothed(data)[0] is Verdict.NOT_REPRODUCED
    # Lower but not halved: not better either.
    data = _data({"autodiff": {100: (1.0, 0.6), 2000: (1.0, 0.6)}, "smoothed": WORSE}, sem=0.0)
    assert check_larger_sigma_vs_autodiff(data)[0] is Verdict.NOT_REPRODUCED


def test_checks_refuse_a_grid_without_the_two_sigmas():
    data = _data({"autodiff": BETTER, "smoothed": BETTER})
    data["wide_sigma"] = 0.2
    verdict, measured = check_larger_sigma_vs_autodiff(data)
    assert verdict is Verdict.NOT_REPRODUCED and "no grid cell" in measured


def test_summarize_and_cells_against_hand_values():
    rows = [
        {"readout": "voltage", "noise": 5.0, "trials": 4, "sigma": sg, "samples": 10,
         "repeat": r, "reference": "autodiff", "rel_error": e, "cosine": 0.1}
        for sg, errs in ((0.01, (1.0, 3.0)), (0.15, (0.5, 0.7)), (0.3, (0.2, 0.4)))
        for r, e in enumerate(errs)
    ]  # fmt: skip
    summary = summarize(rows)
    assert len(summary) == 3
    first = next(r for r in summary if r["sigma"] == 0.01)
    assert first["rel_error"] == pytest.approx(2.0) and first["rel_error_sem"] == pytest.approx(1.0)
    refs = [{"readout": "voltage", "noise": 5.0, "trials": 4, "sigma": s, "autodiff_se": 0.3}
            for s in (0.01, 0.15, 0.3)]  # fmt: skip
    data = {"narrow_sigma": 0.01, "wide_sigma": 0.15, "summary": summary, "references": refs}
    (cell,) = sigma_cells(data, "autodiff")
    assert (cell.narrow, cell.wide, cell.best_sigma) == pytest.approx((2.0, 0.6, 0.3))
    # 2 x sqrt(1.0^2 + 0.1^2 + 0.3^2 + 0.3^2)
    assert cell.band == pytest.approx(2 * np.sqrt(1.19))
    assert not cell.better  # 1.4 lower, inside the band of 2.18
    assert cell.label() == "voltage/noise 5, 4 trials/S=10"


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, field",
    [({"wide_sigma": 0.2}, "wide_sigma"), ({"reference_draws": 5}, "reference_draws"),
     ({"reference_draws": 2}, "reference_draws"),
     ({"readouts": ("spikes",)}, "readouts"), ({"samples": (1, 10)}, "samples"),
     ({"repeats": 1}, "repeats"), ({"trials": (0,)}, "trials"), ({"sigmas": ()}, "sigmas"),
     ({"narrow_sigma": 0.3, "wide_sigma": 0.15, "sigmas": (0.15, 0.3)}, "narrow_sigma")],
)  # fmt: skip
def test_settings_name_the_bad_field(kw, field):
    with pytest.raises(ConfigError, match=field):
        SigmaReferencesSettings(**kw)


def test_conditions_are_the_noise_free_network_then_each_trial_count():
    s = SigmaReferencesSettings(trials=(1, 4), noise_std=5.0)
    assert s.conditions == ((0.0, 1), (5.0, 1), (5.0, 4))
    assert SigmaReferencesSettings(trials=()).conditions == ((0.0, 1),)


# --- the tiny run (called by tests/test_experiments.py on its run of the tiny preset) -------


def check_tiny_run(result, s: SigmaReferencesSettings, tmp_path) -> None:
    """The tiny run's files, rows and references (``result`` saved in ``tmp_path``)."""
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert sorted(saved["figures"]) == sorted(
        ["error_vs_sigma_noise_free.png", "references.png"]
        + [f"error_vs_sigma_noise_{k}_trials.png" for k in s.trials]
    )
    for name in saved["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    rows = result.data["rows"]
    n_cond = len(s.conditions)
    assert len(rows) == len(s.readouts) * n_cond * len(s.sigmas) * len(s.samples) * s.repeats * 3
    assert result.data["parameters"] == D
    lines = (tmp_path / "estimates.csv").read_text().splitlines()
    assert len(lines) == len(rows) + 1
    refs = result.data["references"]
    assert len(refs) == len(s.readouts) * n_cond * len(s.sigmas)
    # the expected loss's gradient has Monte-Carlo error only where there is noise
    assert all((r["expected_se"] > 0) == (r["noise"] > 0) for r in refs)
    # on the noise-free network the loss is the expected loss: autodiff through the output
    # layer fed with the recorded hidden layer (the regression's objective) gives the whole
    # network's gradient
    noise_free = [r for r in refs if r["noise"] == 0]
    assert max(r["autodiff_vs_expected"] for r in noise_free) < 1e-4
