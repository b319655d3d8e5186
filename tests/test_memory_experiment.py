"""The Benna-Fusi experiment of ``weakgrad reproduce`` (seed 004): each claim check on data
made to pass it and made to fail it, and the tiny preset end to end."""

import json

import numpy as np
import pytest

from weakgrad.experiments.claims import Verdict
from weakgrad.experiments.memory import (
    BennaFusiMemory,
    check_beats_exponential,
    check_capacity_n_over_log_n,
    check_inverse_sqrt_decay,
    check_log_n_variables,
    check_naive_needs_sqrt_n_variables,
    spread,
)

N = np.logspace(2, 10, 17)


def test_spread():
    assert spread([2.0, 2.0]) == 1.0
    assert spread([1.0, 3.0, 2.0]) == 3.0
    assert spread([1.0, 0.0]) == float("inf")


@pytest.mark.parametrize(
    "exponent,window,verdict",
    [
        (-0.52, (10.0, 1e4), Verdict.REPRODUCED),
        (-0.45, (10.0, 1e3), Verdict.REPRODUCED),
        (-0.65, (10.0, 1e4), Verdict.PARTLY),
        (-0.5, (10.0, 500.0), Verdict.PARTLY),  # under two decades
        (-1.0, (10.0, 1e4), Verdict.NOT_REPRODUCED),
        (-0.2, (10.0, 1e4), Verdict.NOT_REPRODUCED),
    ],
)
def test_check_inverse_sqrt_decay(exponent, window, verdict):
    data = {"fit_exponent": exponent, "fit_window": window, "long_chain": 16}
    v, measured = check_inverse_sqrt_decay(data)
    assert v is verdict
    assert f"{exponent:.3f}" in measured


@pytest.mark.parametrize(
    "capacity,verdict",
    [
        (0.8 * N / np.log(N), Verdict.REPRODUCED),
        # flattest against N / ln N but wobbling by a factor 3
        (N / np.log(N) * np.where(np.arange(N.size) % 2, 3.0, 1.0), Verdict.PARTLY),
        (0.04 * N, Verdict.NOT_REPRODUCED),  # extensive: N is flatter
        (np.sqrt(N), Verdict.NOT_REPRODUCED),
        (np.log(N), Verdict.NOT_REPRODUCED),
    ],
)
def test_check_capacity_n_over_log_n(capacity, verdict):
    v, _ = check_capacity_n_over_log_n({"synapse_counts": N, "best_capacity": capacity})
    assert v is verdict


@pytest.mark.parametrize(
    "m,top,verdict",
    [
        (np.round(1.5 * np.log10(N)), 20, Verdict.REPRODUCED),
        (np.round(1.5 * np.log10(N)) + np.where(np.arange(N.size) == 8, 4, 0), 20, Verdict.PARTLY),
        (np.minimum(np.round(1.5 * np.log10(N)), 12), 12, Verdict.PARTLY),  # at the limit
        (np.round(N**0.5), 20, Verdict.NOT_REPRODUCED),
        (np.full(N.size, 5.0), 20, Verdict.NOT_REPRODUCED),
    ],
)
def test_check_log_n_variables(m, top, verdict):
    data = {"synapse_counts": N, "best_m": m, "max_chain": top}
    v, measured = check_log_n_variables(data)
    assert v is verdict
    assert (f"limit {top}" in measured) == bool(np.any(m >= top))


HN = np.logspace(2, 6, 9)


@pytest.mark.parametrize(
    "m,top,verdict",
    [
        (np.round(0.25 * np.sqrt(HN)), 1024, Verdict.REPRODUCED),
        (np.round(0.25 * HN**0.3), 1024, Verdict.PARTLY),
        (np.round(0.25 * HN**0.7), 8192, Verdict.PARTLY),
        (np.round(1.5 * np.log10(HN)), 1024, Verdict.NOT_REPRODUCED),  # log N: not sqrt
        (np.minimum(np.round(2 * np.sqrt(HN)), 512), 512, Verdict.NOT_REPRODUCED),  # capped
    ],
)
def test_check_naive_needs_sqrt_n_variables(m, top, verdict):
    data = {"homogeneous_counts": HN, "homogeneous_best_m": m, "homogeneous_max_chain": top}
    v, measured = check_naive_needs_sqrt_n_variables(data)
    assert v is verdict
    assert (f"limit {top}" in measured) == bool(np.any(m >= top))


@pytest.mark.parametrize(
    "chain,expo,verdict",
    [
        (N / np.log(N), np.sqrt(N), Verdict.REPRODUCED),
        (N / np.log(N), np.log(N) ** 2, Verdict.REPRODUCED),
        (10 * N**0.7, N**0.7, Verdict.PARTLY),
        (np.sqrt(N), N / np.log(N), Verdict.NOT_REPRODUCED),
        (N**0.7, 2 * N**0.7, Verdict.NOT_REPRODUCED),
    ],
)
def test_check_beats_exponential(chain, expo, verdict):
    data = {"synapse_counts": N, "best_capacity": chain, "exp_capacity_same_snr": expo}
    v, _ = check_beats_exponential(data)
    assert v is verdict
    _, measured = check_beats_exponential({**data, "exp_capacity_free": N / np.e})
    assert "best tau" in measured


def test_tiny_preset_runs_and_saves(tmp_path):
    exp = BennaFusiMemory()
    result = exp.run(exp.tiny())
    d = result.data
    # the simulated overlap's mean and spread follow the closed forms even at tiny size
    assert np.all(np.abs(d["sim_signal"] - d["theory_signal"]) < 5 * d["sim_signal_error"] + 1e-6)
    assert np.all(np.diff(d["best_capacity"]) > 0)
    record = result.save(tmp_path / "out", seconds=1.0)
    assert {c["id"] for c in record["claims"]} == {c.id for c in exp.claims}
    files = ("snr.png", "signal_noise.png", "capacity.png", "variables.png", "capacity.csv")
    for name in (*files, "memory.npz", "memory.json"):
        assert (tmp_path / "out" / name).is_file()
    saved = json.loads((tmp_path / "out" / "memory.json").read_text())
    assert saved["fit_exponent"] == pytest.approx(d["fit_exponent"])
