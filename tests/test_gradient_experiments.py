"""The gradient-matching experiments of study 000 (weakgrad.experiments.gradients): every
claim's check on data made to pass it and on data made to fail it, the shared measures
against hand-computed values, the compiled autodiff reference of ``gradcheck`` against
``jax.grad``, and one experiment at its tiny size writing its files and figures."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.analysis.diagnostics import gradcheck
from weakgrad.estimators import GaussianSmoothing
from weakgrad.experiments import Verdict
from weakgrad.experiments.base import RESULT_FILE
from weakgrad.experiments.gradients import (
    HhShortGradient,
    MnistAnnGradient,
    MnistLinearGradient,
    NodePerturbationGradient,
    best_by_samples,
    samples_to_reach,
    zero_leak,
)
from weakgrad.objectives.base import Objective

D = 1010  # output layer of the 784-100-10 network: 1000 weights and 10 biases


def _rows(estimator, samples, errors, *, sigma=0.01, cosine=None, sem=0.01):
    cosine = [max(0.0, 1.0 - e) for e in errors] if cosine is None else cosine
    return [
        {
            "estimator": estimator,
            "samples": s,
            "sigma": sigma,
            "repeats": 3,
            "rel_error": e,
            "rel_error_sem": sem,
            "cosine": c,
            "cosine_sem": 0.01,
        }  # fmt: skip
        for s, e, c in zip(samples, errors, cosine, strict=True)
    ]


S = (10, 100, 500, 900, 1000, 1100, 2000)
NEEDS_D = (1.0, 0.95, 0.7, 0.3, 0.15, 0.05, 0.01)  # good (<= 0.1) from S = 1100 on
EARLY = (1.0, 0.05, 0.04, 0.03, 0.02, 0.01, 0.01)  # good from S = 100 on
SPIKE = (1.0, 0.95, 0.7, 0.3, 0.9, 0.05, 0.01)  # rise at S = 1000


def _sweep(errors, **kw):
    return {"parameters": D, "sweep": _rows("regression", S, errors, **kw)}


def _sigma_data(err_small, err_wide, sem=0.01):
    return {
        "sigma": 0.01, "wide_sigma": 0.15, "sigma_samples": 1100,
        "sigma_sweep": _rows("regression", [1100], [err_small], sigma=0.01, sem=sem)
        + _rows("regression", [1100], [err_wide], sigma=0.15, sem=sem)
        + _rows("regression", [1100], [0.9], sigma=0.001, sem=sem),
    }  # fmt: skip


def _heatmaps(narrow_noise, wide_noise):
    rng = np.random.default_rng(0)
    ref = np.zeros((100, 10))
    ref[:, 3] = rng.standard_normal(100)  # one nonzero column, as in the study's figure
    h = {
        "narrow": (ref, ref + narrow_noise * rng.standard_normal(ref.shape)),
        "wide": (ref, ref + wide_noise * rng.standard_normal(ref.shape)),
    }
    return {"heatmaps": h, "narrow_label": "narrow", "wide_label": "wide"}


def _node(node_err, reg_err):
    s = (10, 100, 1000, 2000)
    return {"ann": _rows("node", s, node_err) + _rows("regression", s, reg_err)}


def _hh_node(free, step, step_cos=None):
    s = (10, 30, 100)
    # two sigmas: the check takes the better one per S
    worse = [e + 1.0 for e in free]
    return {
        "hh": _rows("node", s, free, sigma=0.1) + _rows("node", s, worse, sigma=1.0)
        + _rows("node-stepwise", s, step, sigma=0.1, cosine=step_cos)
    }  # fmt: skip


CLAIMS = {
    c.id: c
    for e in (MnistLinearGradient(), MnistAnnGradient(), HhShortGradient(),
              NodePerturbationGradient())
    for c in e.claims
}  # fmt: skip
CASES = {
    # claim id: (data made to pass, data made to fail)
    "linear-regression-matches-autodiff": (_sweep(NEEDS_D), _sweep((1, 1, 1, 1, 1, 0.8, 0.5))),
    "linear-needs-s-of-d": (_sweep(NEEDS_D), _sweep(EARLY)),
    "linear-error-spike-near-d": (_sweep(SPIKE), _sweep(NEEDS_D)),
    "ann-gradient-pretty-good": (_sweep(NEEDS_D), _sweep(NEEDS_D, cosine=[0.3] * len(S))),
    "ann-needs-s-near-d": (_sweep(NEEDS_D), _sweep(EARLY)),
    "hh-gradient-terrible-at-s-1100": (_sweep((1, 1.2, 1.5, 2, 3, 2.5, 1)), _sweep(NEEDS_D)),
    "hh-smaller-s-better": (_sweep((1, 1.2, 1.5, 2, 3, 2.5, 1)), _sweep(NEEDS_D)),
    "hh-larger-sigma-better": (_sigma_data(1.0, 0.3), _sigma_data(0.5, 1.0)),
    "hh-sigma-0.15-zeros-vanish": (_heatmaps(0.5, 0.01), _heatmaps(0.01, 0.5)),
    "node-perturbation-major-optimization": (
        _node((0.4, 0.2, 0.1, 0.05), (1.0, 0.96, 0.13, 0.01)),
        _node((1.5, 1.2, 0.9, 0.7), (1.0, 0.96, 0.13, 0.01)),
    ),
    "stepwise-node-gradient-matches": (
        _hh_node((2, 1.5, 1.2), (0.5, 0.3, 0.2), step_cos=[0.8, 0.9, 0.97]),
        _hh_node((2, 1.5, 1.2), (1.0, 1.0, 1.0), step_cos=[0.0, 0.01, 0.0]),
    ),
    "free-running-node-less-justified": (
        _hh_node((2, 1.5, 1.2), (0.5, 0.3, 0.2)),
        _hh_node((0.5, 0.3, 0.2), (1.0, 1.0, 1.0)),
    ),
}


def test_every_claim_has_cases_and_study_sections():
    assert set(CASES) == set(CLAIMS)
    for e in (MnistLinearGradient(), MnistAnnGradient(), HhShortGradient(),
              NodePerturbationGradient()):  # fmt: skip
        assert e.section in {"Linear Classifier", "ANN", "Case 1: Short Timeframe",
                             "Optimizing Methods to Make Them VIABLE"}  # fmt: skip


@pytest.mark.parametrize("cid", sorted(CASES))
def test_claim_passes_and_fails(cid):
    good, bad = CASES[cid]
    v, measured = CLAIMS[cid].check(good)
    assert v is Verdict.REPRODUCED, measured
    v, measured = CLAIMS[cid].check(bad)
    assert v is Verdict.NOT_REPRODUCED, measured
    assert isinstance(measured, str) and measured


def test_partly_verdicts():
    # error 0.1 at the largest S: between "perfect" (0.05) and 0.2
    v, _ = CLAIMS["linear-regression-matches-autodiff"].check(_sweep((1, 1, 1, 1, 1, 0.5, 0.1)))
    assert v is Verdict.PARTLY
    # larger sigma lower but not half: partly
    v, _ = CLAIMS["hh-larger-sigma-better"].check(_sigma_data(1.0, 0.8))
    assert v is Verdict.PARTLY
    # the difference within the standard errors is not "significant"
    v, _ = CLAIMS["hh-larger-sigma-better"].check(_sigma_data(1.0, 0.3, sem=0.5))
    assert v is Verdict.PARTLY


def test_claims_refuse_grids_without_the_tested_points():
    small = {"parameters": D, "sweep": _rows("regression", (4, 16), (1.0, 0.98))}
    for cid in ("linear-regression-matches-autodiff", "hh-gradient-terrible-at-s-1100",
                "linear-error-spike-near-d"):  # fmt: skip
        v, measured = CLAIMS[cid].check(small)
        assert v is Verdict.NOT_REPRODUCED and measured
    flat = _heatmaps(0.1, 0.1)
    flat["heatmaps"] = {k: (np.ones((3, 2)), e[:3, :2]) for k, (_, e) in flat["heatmaps"].items()}
    v, measured = CLAIMS["hh-sigma-0.15-zeros-vanish"].check(flat)
    assert v is Verdict.NOT_REPRODUCED and "no zero" in measured


def test_samples_to_reach_needs_every_larger_s():
    s = np.array([10, 100, 1000, 2000])
    assert samples_to_reach(s, np.array([1.0, 0.05, 0.3, 0.05]), 0.1) == 2000
    assert samples_to_reach(s, np.array([0.05, 0.05, 0.05, 0.05]), 0.1) == 10
    assert samples_to_reach(s, np.array([0.05, 0.05, 0.05, 0.2]), 0.1) is None


def test_best_by_samples_takes_the_best_sigma_per_s():
    rows = _rows("node", (30, 10), (0.5, 0.9), sigma=0.1) + _rows(
        "node", (30, 10), (0.2, float("nan")), sigma=1.0
    )
    s, err, _, _ = best_by_samples(rows + _rows("other", (10,), (0.0,)), "node")
    np.testing.assert_array_equal(s, [10, 30])
    np.testing.assert_allclose(err, [0.9, 0.2])


def test_zero_leak_against_hand_values():
    ref = np.array([[2.0, 0.0], [-2.0, 0.0]])  # RMS of the nonzero entries: 2
    est = np.array([[1.0, 0.5], [-1.0, -0.5]])  # RMS on the zeros: 0.5; same direction
    leak, cos = zero_leak(ref, est)
    assert leak == pytest.approx(0.25)
    assert cos == pytest.approx(1.0)
    assert np.isnan(zero_leak(np.ones((2, 2)), est)[0])


def test_gradcheck_compiled_reference_is_autodiff():
    a = jnp.array([1.0, -2.0, 0.5])

    def loss(p, key):
        return jnp.sum(jnp.sin(p["w"]) * a) + p["b"] ** 2

    params = {"w": jnp.array([0.3, 0.1, -0.4]), "b": jnp.array(0.7)}
    check = gradcheck(
        Objective(loss), params, {"smoothing": lambda n, s: GaussianSmoothing(sigma=s, samples=n)},
        samples=[4], sigmas=[0.01], repeats=1, key=jax.random.key(0),
    )  # fmt: skip
    g = jax.grad(loss)(params, None)
    want = np.concatenate([[float(g["b"])], np.asarray(g["w"])])  # ravel: keys sorted
    np.testing.assert_allclose(check.reference, want, rtol=1e-6)


def test_ann_experiment_tiny_saves_data_and_figures(tmp_path):
    exp = MnistAnnGradient()
    result = exp.run(exp.tiny())
    record = result.save(tmp_path, seconds=1.0)
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved == record
    assert sorted(saved["figures"]) == ["error_vs_samples.png", "heatmap.png"]
    for name in saved["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "sweep.csv").is_file()
    with np.load(tmp_path / "heatmaps.npz") as z:
        assert z["regression, S=4: autodiff"].shape == (100, 10)
        assert z["regression, S=4"].shape == (100, 10)
        ref, est = z["regression, S=4: autodiff"], z["regression, S=4"]
    # the saved heat map is the estimate the result's sweep compared (same cosine)
    rows = json.loads((tmp_path / "summary.json").read_text())["studies"]["sweep"]["summary"]
    cos = float(np.sum(ref * est) / np.linalg.norm(ref) / np.linalg.norm(est))
    assert rows[0]["samples"] == 4 and rows[0]["repeats"] == 1
    # the heat map covers the 1000 weights, the sweep's cosine also the 10 biases
    assert cos == pytest.approx(rows[0]["cosine"], abs=0.05)
    assert [c["id"] for c in saved["claims"]] == [c.id for c in exp.claims]
