"""Seed 004's experiments of ``weakgrad reproduce`` (issue 18): every claim's check on data
made to pass it and on data made to fail it (pure functions: no simulation), and the
products' measures against the closed forms of orthogonal products."""

import json
import math

import numpy as np
import pytest

from weakgrad.experiments.claims import Verdict
from weakgrad.experiments.degeneracy import (
    DeepLinearDegeneracy,
    MatrixProducts,
    StudyNetworkDegeneracy,
    check_adam_fixes_scale_not_degeneracy,
    check_degeneracy_predicts_weak_gradient_training,
    check_fold0_suboptimal_without_vanishing,
    check_fold1_larger_gradients_trains_worse,
    check_nonlinear_orthogonal_still_degenerate,
    check_orthogonal_08_vanishing_but_trains,
    check_orthogonal_products_isometric,
    check_orthogonal_smaller_gradients_trains_better,
    check_products_concentrate_near_zero,
    check_products_degenerate_with_depth,
    paired,
)

R, P, N = Verdict.REPRODUCED, Verdict.PARTLY, Verdict.NOT_REPRODUCED

# --- products of matrices --------------------------------------------------------------


def _products(rank=(0.8, 0.3, 0.05), low=(0.1, 0.5, 0.9), top=(2.0, 5.0, 40.0), above=0.05):
    n = len(rank)
    return {
        "depths": [1, 10, 100][:n],
        "gaussian": {
            "effective_rank_fraction": list(rank),
            "effective_rank_fraction_sem": [0.01] * n,
            "fraction_below_0.1": list(low),
            "fraction_above_1": [0.3, 0.1, above][:n],
            "max": list(top),
            "max_sem": [0.1] * n,
        },
        "orthogonal": {"max_deviation": [1e-7] * n},
    }


def test_products_degenerate_with_depth():
    assert check_products_degenerate_with_depth(_products())[0] is R
    # falls overall but not at the second step
    assert check_products_degenerate_with_depth(_products(rank=(0.8, 0.3, 0.3)))[0] is P
    assert check_products_degenerate_with_depth(_products(rank=(0.8, 0.8, 0.8)))[0] is N
    # a fall within the noise is no fall
    assert check_products_degenerate_with_depth(_products(rank=(0.8, 0.79, 0.78)))[0] is N


def test_products_concentrate_near_zero():
    assert check_products_concentrate_near_zero(_products())[0] is R
    # concentrated near zero, but no value grows
    assert check_products_concentrate_near_zero(_products(top=(2.0, 1.0, 0.5)))[0] is P
    assert check_products_concentrate_near_zero(_products(above=0.5))[0] is P
    # not concentrated: fewer than half the values below 0.1 at the largest depth
    assert check_products_concentrate_near_zero(_products(low=(0.1, 0.2, 0.3)))[0] is N
    verdict, measured = check_products_concentrate_near_zero(_products(low=(0.1, 0.6, 0.55)))
    assert verdict is N and "0.55" in measured


def test_orthogonal_products_isometric():
    d = _products()
    assert check_orthogonal_products_isometric(d)[0] is R
    d["orthogonal"]["max_deviation"] = [1e-7, 1e-7, 0.5]
    assert check_orthogonal_products_isometric(d)[0] is N


def test_products_data_of_orthogonal_products_pass():
    """The measures of real orthogonal products (closed form: all singular values 1) pass
    the isometry check; Gaussian depth-1 products have singular values up to ~2."""
    from weakgrad.analysis.degeneracy import ProductSettings, matrix_products
    from weakgrad.experiments.degeneracy import products_data

    d = products_data(matrix_products(ProductSettings(n=6, depths=(1, 2), samples=2)))
    assert check_orthogonal_products_isometric(d)[0] is R
    assert max(d["orthogonal"]["max_deviation"]) < 1e-5
    assert 0 < d["gaussian"]["effective_rank_fraction"][0] <= 1


# --- deep linear network ----------------------------------------------------------------

RUNS = 5


def _init(loss, grad_early=1.0, grad_layers=(1.0, 1.0, 1.0), loss0=1.0, mid=None, jitter=0.01):
    """One initialisation's per-run data around the given means (small paired noise)."""
    rng = np.random.default_rng(abs(hash((loss, grad_early))) % 2**32)

    def runs(m):
        return list(m + jitter * m * rng.standard_normal(RUNS))

    mid = loss + 0.05 * (loss0 - loss) if mid is None else mid
    return {
        "loss_initial": runs(loss0),
        "loss_mid": runs(mid),
        "loss_final": runs(loss),
        "grad_init": runs(float(np.mean(grad_layers))),
        "grad_early": runs(grad_early),
        "grad_init_layers": list(grad_layers),
        "grad_early_layers": [grad_early] * len(grad_layers),
    }


def _seedlike():
    """The seed's picture: fold 0 plateaus at 0.6 with healthy gradients; fold 1 has larger
    gradients and trains worse; orthogonal has smaller ones and trains far better;
    orthogonal x 0.8 has vanishing ones and trains about as well as orthogonal."""
    one = {
        "fold 0": _init(0.6, grad_early=1.0),
        "fold 1": _init(0.8, grad_early=1.5),
        "orthogonal": _init(0.05, grad_early=0.5),
        "orthogonal x 0.8": _init(0.07, grad_early=0.2, grad_layers=(0.001, 0.1, 1.0)),
    }
    return {"sgd": one, "adam": {k: dict(v) for k, v in one.items()}}


def test_paired_difference():
    m, e = paired([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])
    assert m == pytest.approx(2.0) and e == pytest.approx(1 / math.sqrt(3))


def test_fold0_suboptimal_without_vanishing():
    d = _seedlike()
    assert check_fold0_suboptimal_without_vanishing(d)[0] is R
    # gradients vanish across layers under one optimiser: partly overall
    d["sgd"]["fold 0"] = _init(0.6, grad_layers=(0.001, 0.1, 1.0))
    assert check_fold0_suboptimal_without_vanishing(d)[0] is P
    # it trains to the optimum, steadily, with vanishing gradients: not reproduced
    bad = _init(0.01, grad_layers=(0.001, 0.1, 1.0), mid=0.5)
    d = {"sgd": {"fold 0": bad}, "adam": {"fold 0": bad}}
    assert check_fold0_suboptimal_without_vanishing(d)[0] is N


def test_fold1_larger_gradients_trains_worse():
    d = _seedlike()
    verdict, measured = check_fold1_larger_gradients_trains_worse(d)
    assert verdict is R and "SGD (reproduced)" in measured and "ADAM (reproduced)" in measured
    # with Adam, fold 1 trains as well as fold 0: partly under Adam, partly overall
    d["adam"]["fold 1"] = _init(0.6, grad_early=1.5)
    assert check_fold1_larger_gradients_trains_worse(d)[0] is P
    # smaller gradients and better training under both: not reproduced
    for opt in ("sgd", "adam"):
        d[opt]["fold 1"] = _init(0.3, grad_early=0.5)
    assert check_fold1_larger_gradients_trains_worse(d)[0] is N


def test_orthogonal_smaller_gradients_trains_better():
    d = _seedlike()
    assert check_orthogonal_smaller_gradients_trains_better(d)[0] is R
    # better, but not "substantially" (more than half fold 0's loss), with larger gradients
    for opt in ("sgd", "adam"):
        d[opt]["orthogonal"] = _init(0.4, grad_early=2.0)
    assert check_orthogonal_smaller_gradients_trains_better(d)[0] is N


def test_orthogonal_08_vanishing_but_trains():
    d = _seedlike()
    assert check_orthogonal_08_vanishing_but_trains(d)[0] is R
    # vanishing, better than fold 0 but 6x orthogonal's loss: partly
    for opt in ("sgd", "adam"):
        d[opt]["orthogonal x 0.8"] = _init(0.3, grad_early=0.2, grad_layers=(0.001, 0.1, 1.0))
    assert check_orthogonal_08_vanishing_but_trains(d)[0] is P
    # does not train at all (the loss stays at its initial value): not reproduced
    for opt in ("sgd", "adam"):
        d[opt]["orthogonal x 0.8"] = _init(1.0, grad_early=0.2, grad_layers=(0.001, 0.1, 1.0))
    assert check_orthogonal_08_vanishing_but_trains(d)[0] is N
    # trains like orthogonal but its gradients do not vanish: not the seed's manipulation
    for opt in ("sgd", "adam"):
        d[opt]["orthogonal x 0.8"] = _init(0.05, grad_layers=(0.9, 1.0, 1.0))
    assert check_orthogonal_08_vanishing_but_trains(d)[0] is N


def test_adam_fixes_scale_not_degeneracy():
    d = _seedlike()
    assert check_adam_fixes_scale_not_degeneracy(d)[0] is R
    d["adam"]["orthogonal x 0.8"] = _init(0.9)
    assert check_adam_fixes_scale_not_degeneracy(d)[0] is P
    d["adam"]["fold 0"] = _init(0.06)
    assert check_adam_fixes_scale_not_degeneracy(d)[0] is N


# --- the study's networks ---------------------------------------------------------------


def _spectra(spread_hh=(1.5, 1.2), spread_lif=(0.8, 0.9), lin=1e-7):
    def by_dur(spreads):
        return {
            f"{d} ms": {"perturbation": {"spread": v}, "autodiff": {"spread": v}}
            for d, v in zip((10, 100), spreads, strict=True)
        }

    return {
        "linear_orthogonal_spread": lin,
        "spectra": {
            "hh": {"orthogonal": by_dur(spread_hh), "gaussian": by_dur(spread_hh)},
            "lif": {"orthogonal": by_dur(spread_lif), "gaussian": by_dur(spread_lif)},
        },
    }


def test_nonlinear_orthogonal_still_degenerate():
    verdict, measured = check_nonlinear_orthogonal_still_degenerate(_spectra())
    assert verdict is R and "HH 100 ms 1.2" in measured
    # LIF's spectra flat (or undefined: a zero Jacobian) while HH's spread: partly
    assert check_nonlinear_orthogonal_still_degenerate(_spectra(spread_lif=(0.1, 0.1)))[0] is P
    nan = float("nan")
    assert check_nonlinear_orthogonal_still_degenerate(_spectra(spread_lif=(nan, nan)))[0] is P
    # all flat: not reproduced; the linear reference not flat: not reproduced
    flat = _spectra(spread_hh=(0.1, 0.1), spread_lif=(0.1, 0.1))
    assert check_nonlinear_orthogonal_still_degenerate(flat)[0] is N
    assert check_nonlinear_orthogonal_still_degenerate(_spectra(lin=0.5))[0] is N


def _train(rank_g, rank_o, loss_g, loss_o, noise=0.01):
    rng = np.random.default_rng(0)

    def runs(m):
        return list(m + noise * rng.standard_normal(RUNS))

    def one(rank, loss):
        return {
            "effective_rank_fraction": runs(rank),
            "final_loss": runs(loss),
            "initial_loss": runs(2.3),
            "val_loss": runs(loss),
            "val_accuracy": runs(0.5),
        }

    return {"train": {"gaussian": one(rank_g, loss_g), "orthogonal": one(rank_o, loss_o)}}


def test_degeneracy_predicts_weak_gradient_training():
    check = check_degeneracy_predicts_weak_gradient_training
    # orthogonal less degenerate and trains lower: reproduced; either way round
    assert check(_train(0.5, 0.7, 1.5, 1.0))[0] is R
    assert check(_train(0.7, 0.5, 1.0, 1.5))[0] is R
    # less degenerate but no difference in training: partly; trains worse: not reproduced
    assert check(_train(0.5, 0.7, 1.2, 1.2))[0] is P
    assert check(_train(0.5, 0.7, 1.0, 1.5))[0] is N
    # equally degenerate, equal training: partly; different training: not reproduced
    assert check(_train(0.6, 0.6, 1.2, 1.2))[0] is P
    verdict, measured = check(_train(0.6, 0.6, 1.0, 1.5))
    assert verdict is N and "final training loss +0.4" in measured  # 1.5 - 1.0, noisy


# --- presets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exp", [MatrixProducts(), DeepLinearDegeneracy(), StudyNetworkDegeneracy()]
)
def test_presets_and_claims(exp):
    """Distinct presets; the seed's sizes at full (30 layers x 64, 10 runs; depths 1, 10,
    100); every claim names its seed section and states its thresholds."""
    assert exp.tiny() != exp.full() and exp.quick() != exp.tiny()
    assert exp.section == "Degeneracy, not vanishing gradients (seed 004)"
    for c in exp.claims:
        assert c.section.startswith("004") and c.measures and c.claim
    full = exp.full()
    if isinstance(exp, DeepLinearDegeneracy):
        assert (full.layers, full.width, full.runs) == (30, 64, 10)
    if isinstance(exp, MatrixProducts):
        assert full.depths == (1, 10, 100)


@pytest.mark.parametrize(
    ("make", "kw", "match"),
    [
        (MatrixProducts, {"depths": (10, 1)}, "depths"),
        (MatrixProducts, {"samples": 1}, "samples"),
        (DeepLinearDegeneracy, {"runs": 1}, "runs"),
        (DeepLinearDegeneracy, {"early": 1000}, "early"),
        (DeepLinearDegeneracy, {"adam_learning_rate": 0.0}, "adam_learning_rate"),
        (StudyNetworkDegeneracy, {"durations": ()}, "durations"),
        (StudyNetworkDegeneracy, {"methods": ("autodiff",)}, "methods"),
        (StudyNetworkDegeneracy, {"examples": 50}, "examples"),
        (StudyNetworkDegeneracy, {"lif_bias": (1.0,)}, "lif_bias"),
    ],
)
def test_settings_refuse_bad_values(make, kw, match):
    import dataclasses

    from weakgrad.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(make().quick(), **kw)


def test_study_network_training_runs_kept_in_scratch_are_not_trained_again(tmp_path, monkeypatch):
    """A killed run continues: the training runs found in the scratch folder are read back
    (here all of them, made up), none is trained again."""
    from weakgrad.experiments import degeneracy

    exp = StudyNetworkDegeneracy()
    s = exp.tiny()
    for init in ("gaussian", "orthogonal"):
        for r in range(s.runs):
            made_up = {"steps": [0, s.train_steps], "curve": [2.3, 2.0 - r], "val_loss": 2.1,
                       "val_accuracy": 0.2, "effective_rank_fraction": 0.5}  # fmt: skip
            (tmp_path / f"train-{init}-{r}.json").write_text(json.dumps(made_up))

    def trained(*args):
        raise AssertionError("a kept training run was trained again")

    monkeypatch.setattr(degeneracy, "_train_hh", trained)
    result = exp.run_resumable(s, tmp_path)
    assert result.data["train"]["gaussian"]["final_loss"] == [2.0 - r for r in range(s.runs)]
