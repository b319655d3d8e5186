"""The study as experiments (issue 15): every experiment runs at a tiny size and writes its
files; every claim's check passes on data made to pass it and fails on data made to fail
it; the runner caches, records a failing experiment and writes the report; the CLI refuses
unknown names."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import test_sigma_references
from cli_helpers import run_cli

from weakgrad.errors import ConfigError
from weakgrad.experiments import (
    AbstractExperiment,
    Claim,
    ExperimentResult,
    ExperimentSettings,
    Verdict,
    all_experiments,
    reproduce,
)
from weakgrad.experiments.base import RESULT_FILE, AbstractResumableExperiment
from weakgrad.experiments.smoothing import ScoreVsQuadratureExperiment

# --- every experiment at a tiny size ------------------------------------------------------


TINY_CHECKS = {"hh-sigma-references": test_sigma_references.check_tiny_run}


@pytest.mark.parametrize("exp", all_experiments(), ids=lambda e: e.name)
def test_experiment_runs_tiny_and_saves_its_files(exp, tmp_path):
    result = exp.run(exp.tiny())
    record = result.save(tmp_path, seconds=1.5)
    assert (tmp_path / "manifest.json").is_file()
    saved = json.loads((tmp_path / RESULT_FILE).read_text())
    assert saved == record
    assert saved["settings"] == exp.tiny().as_dict()
    assert saved["figures"], exp.name
    for fig in saved["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000
    assert [c["id"] for c in saved["claims"]] == [c.id for c in exp.claims]
    assert all(c["verdict"] in {v.value for v in Verdict} for c in saved["claims"])
    assert list(tmp_path.glob("*.csv")), "no data file"
    if exp.name in TINY_CHECKS:  # an experiment's own checks of this run (one tiny run)
        TINY_CHECKS[exp.name](result, exp.tiny(), tmp_path)


def test_registry_in_study_order_with_unique_names_and_presets():
    exps = all_experiments()
    names = [e.name for e in exps]
    assert len(set(names)) == len(names)
    assert names[:2] == ["single-neuron-landscape", "trial-averaging"]
    ids = [c.id for e in exps for c in e.claims]
    assert len(set(ids)) == len(ids)
    for e in exps:
        for preset in (e.quick(), e.full(), e.tiny()):
            assert dataclasses.is_dataclass(preset) and preset.as_dict() == json.loads(
                json.dumps(preset.as_dict())
            )
        assert e.full() != e.tiny()


# --- every claim: data made to pass, data made to fail -------------------------------------


def _line(n=41, lo=0.5, hi=0.75):
    w = np.linspace(lo, hi, n)
    return w, 0.07 - 0.01 * (w - lo)


def _stairs(n=41, lo=0.5, hi=0.75, steps=4):
    w = np.linspace(lo, hi, n)
    level = np.floor((w - lo) / (hi - lo) * steps - 1e-9)
    return w, 0.068 + 0.001 * level, level  # loss, spike count change at the same indices


def _firing(stop):
    w = np.linspace(0, 3, 61)
    spikes = np.where(w < stop, 10 + 5 * w, 1.0)
    return {"full_w": w, "full_spikes": spikes}


def _landscape_pass():
    w, loss, spikes = _stairs()
    lw, lloss = _line()
    rng = np.random.default_rng(0)
    big = np.concatenate([np.zeros(20), np.ones(21)])
    return {
        "zoom_w": w, "zoom_loss": loss, "zoom_spikes": spikes,
        "zoom1_w": w, "zoom1_loss": loss, "zoom10_w": lw,
        "zoom10_loss": lloss + 1e-6 * rng.standard_normal(lw.size),
        "full1_loss": big, "full10_loss": np.linspace(0, 1, 41),
    }  # fmt: skip


def _landscape_fail():
    w, loss, _ = _stairs()
    lw, lloss = _line()
    return {
        "zoom_w": lw, "zoom_loss": lloss, "zoom_spikes": np.zeros(lw.size),
        "zoom1_w": w, "zoom1_loss": loss, "zoom10_w": w, "zoom10_loss": loss,
        "full1_loss": np.linspace(0, 1, 41), "full10_loss": np.linspace(0, 1, 41),
    }  # fmt: skip


def _path(w, loss, slope, distinct):
    return {"w": np.asarray(w), "loss": np.asarray(loss), "slope": np.asarray(slope),
            "distinct_tail": distinct}  # fmt: skip


def _errors(mc_border, quad, quad_border, mc=1.0):
    return {
        "errors": {
            "monte_carlo_100": {"rms": mc, "rms_border": mc_border},
            "quadrature_100": {"rms": quad, "rms_border": quad_border},
        }
    }


def _mollified(straight):
    w = np.linspace(0.0, 1.0, 101)
    saw = 0.07 - 0.01 * w + 0.002 * ((w * 20) % 1)  # a sawtooth around a line
    smooth = 0.071 - 0.01 * w if straight else saw
    return {"w": w, "loss": saw, "mollified": smooth, "valid": np.ones(w.size, bool)}


CURVE = np.linspace(0.07, 0.0, 31)
CASES = {
    # claim id: (data made to pass, data made to fail)
    "firing-stops-near-1.8": (_firing(1.82), _firing(2.6)),
    "zoom-steps-and-jumps": (_landscape_pass(), _landscape_fail()),
    "jumps-where-firing-changes": (_landscape_pass(), _landscape_fail()),
    "ten-trial-zoom-straight": (_landscape_pass(), _landscape_fail()),
    "ten-trial-jumps-less-extreme": (_landscape_pass(), _landscape_fail()),
    "fd-eta-0.1-jumps-between-two-values": (
        {"eta=0.1": _path([1.5, 1.6, 1.61], [0, 0, 0], [1, -1, 1], 2)},
        {"eta=0.1": _path([1.5, 2.0, 2.5], [0, 0, 0], [1, 1, 1], 8)},
    ),
    "fd-eta-0.2-zero-gradient": (
        {"eta=0.2": _path([1.5, 1.6, 1.6], [0, 0, 0], [1, 0, 0.0], 1)},
        {"eta=0.2": _path([1.5, 2.0, 2.5], [0, 0, 0], [1, 1, 1.0], 8)},
    ),
    "regression-descent-converges": (
        {"loss": CURVE, "eta=0.1": _path([1.5, 2.9], [0.04, 0.001], [0, 0], 1)},
        {"loss": CURVE, "eta=0.1": _path([1.5, 1.0], [0.04, 0.05], [0, 0], 1)},
    ),
    "regression-tangent-clear": (
        {"reference": [1.0, 2.0, 3.0], "regression": [1.1, 2.1, 2.9], "fd": [5.0, -3.0, 0.0]},
        {"reference": [1.0, 2.0, 3.0], "regression": [5.0, -3.0, 0.0], "fd": [1.1, 2.1, 2.9]},
    ),
    "bump-is-a-mollifier": (
        {"integrals": {"1-D": 1.0002, "2-D": 0.9995}, "max_outside": 0.0},
        {"integrals": {"1-D": 1.1, "2-D": 0.9995}, "max_outside": 0.3},
    ),
    "mollified-loss-smooth": (_mollified(straight=True), _mollified(straight=False)),
    "mollified-descent-faster": (
        {"loss": CURVE, "with": {"loss": [0.04, 0.001]}, "without": {"loss": [0.04, 0.03]}},
        {"loss": CURVE, "with": {"loss": [0.04, 0.03]}, "without": {"loss": [0.04, 0.001]}},
    ),
    "voltage-mollification-smooths-spike": (
        {"raw_max_slope": 100.0, "max_slope": [40.0, 20.0, 10.0]},
        {"raw_max_slope": 100.0, "max_slope": [100.0, 120.0, 130.0]},
    ),
    "self-coupled-loss-bands": (
        {"band_w": np.array([1.0, 2.0]), "band_count": np.array([1, 3])},
        {"band_w": np.array([1.0, 2.0]), "band_count": np.array([1, 1])},
    ),
    "self-coupled-regression-line-poor": (
        {"zoom_w": np.arange(6.0), "zoom_loss": np.array([0, 1, 0, 1, 0, 1.0])},
        {"zoom_w": np.arange(6.0), "zoom_loss": np.arange(6.0) * 0.5 + 1},
    ),
    "monte-carlo-blows-up-at-borders": (_errors(1.5, 0.01, 0.01), _errors(0.01, 0.01, 0.01)),
    "quadrature-more-accurate": (_errors(1.5, 0.01, 0.01), _errors(1.5, 2.0, 9.0)),
    "regression-and-mollification-beat-fd": (
        {
            "loss_range": {"a": 0.1},
            "final_loss": {
                "a": {
                    "fixed": {"fd": 0.08, "regression": 0.01, "mollified": 0.02},
                    "growing": {"fd": 0.05, "regression": 0.0, "mollified": 0.0},
                }
            },
        },
        {
            "loss_range": {"a": 0.1},
            "final_loss": {
                "a": {
                    "fixed": {"fd": 0.01, "regression": 0.01, "mollified": 0.02},
                    "growing": {"fd": 0.0, "regression": 0.0, "mollified": 0.005},
                }
            },
        },
    ),
    "trial-averaging-straight-where": (
        {
            "noises": np.array([5.0, 200.0]),
            "roughness_10": np.array([0.03, 0.01]),
            "lift_10": np.array([0.02, 0.5]),
        },
        {
            "noises": np.array([5.0, 200.0]),
            "roughness_10": np.array([0.2, 0.1]),
            "lift_10": np.array([0.02, 0.5]),
        },
    ),
    "autodiff-fails-where-spikes-are-thresholds": (
        {
            "chance": 0.34,
            "cells": {
                ("lif", "short"): {"autodiff": 0.35, "regression": 0.6},
                ("perceptron", "short"): {"autodiff": 0.3, "node": 0.5},
            },
        },
        {
            "chance": 0.34,
            "cells": {
                ("lif", "short"): {"autodiff": 0.7, "regression": 0.6},
                ("perceptron", "short"): {"autodiff": 0.3, "node": 0.35},
            },
        },
    ),
    "complete-graph-turned-off": (
        {
            "loss_initial": 0.06,
            "loss_final": 0.005,
            "steps": 30,
            "spikes_initial": 14.0,
            "spikes_final": 1.0,
        },
        {
            "loss_initial": 0.06,
            "loss_final": 0.05,
            "steps": 30,
            "spikes_initial": 14.0,
            "spikes_final": 12.0,
        },
    ),
    "linear-toy-gradient-rows-constant": (
        {"row_spread_start": 0.0, "row_spread_end": 1e-7, "closed_form_error": 1e-8},
        {"row_spread_start": 0.3, "row_spread_end": 0.5, "closed_form_error": 0.4},
    ),
    "linear-toy-regression-almost-perfect": ({"error_w2_rows": 0.01}, {"error_w2_rows": 0.9}),
    "linear-toy-isolated-layers-less-noisy": (
        {"error_w2": 0.1, "error_all": 0.9},
        {"error_w2": 0.9, "error_all": 0.5},
    ),
    "linear-toy-scatters": (
        {"scatter_slopes": np.array([0.1, 0.1, 0.07])},
        {"scatter_slopes": np.array([0.1, 0.2, 0.1])},
    ),
    "short-timeframe-few-spikes": (
        {
            "spikes_short": 1.0,
            "spikes_long": 6.0,
            "firing": 5,
            "hidden": 10,
            "short_ms": 10.0,
            "long_ms": 100.0,
        },
        {
            "spikes_short": 4.0,
            "spikes_long": 3.0,
            "firing": 5,
            "hidden": 10,
            "short_ms": 10.0,
            "long_ms": 100.0,
        },
    ),
    "longer-timeframe-more-chaotic": (
        {"tv_ratio": np.array([1.0, 2.0, 5.0]), "duration_ms": np.array([10.0, 50.0, 100.0])},
        {"tv_ratio": np.array([3.0, 2.0, 1.0]), "duration_ms": np.array([10.0, 50.0, 100.0])},
    ),
    "autodiff-gradients-blow-up": (
        {"blowup_ratio": np.array([1.0, 5.0, 100.0]), "duration_ms": np.array([10.0, 50, 100])},
        {"blowup_ratio": np.array([1.0, 1.0, 2.0]), "duration_ms": np.array([10.0, 50, 100])},
    ),
    "cross-correlation-peaks-at-lag": (
        {
            "shift_ms": 5.0,
            "lag_step_ms": 0.5,
            "taus_ms": np.array([1.0, 10.0]),
            "peak_lag_ms": np.array([5.0, 5.5]),
            "loss_at_shift": 0.0,
            "loss_at_zero": 1.0,
        },
        {
            "shift_ms": 5.0,
            "lag_step_ms": 0.5,
            "taus_ms": np.array([1.0, 10.0]),
            "peak_lag_ms": np.array([0.0, -3.0]),
            "loss_at_shift": 0.9,
            "loss_at_zero": 0.2,
        },
    ),
}
ALL_CLAIMS = {c.id: c for e in all_experiments() for c in e.claims}


def test_every_claim_has_a_pass_and_a_fail_case():
    """Claims of this file's experiments are in CASES; the others' (in their own test
    files) are named there by id or by their check function."""
    here = Path(__file__)
    others = "".join(p.read_text() for p in here.parent.glob("test_*.py") if p != here)
    missing = [
        cid for cid, c in ALL_CLAIMS.items()
        if cid not in CASES and cid not in others and c.check.__name__ not in others
    ]  # fmt: skip
    assert not missing, f"claims without pass/fail tests: {missing}"
    assert set(CASES) <= set(ALL_CLAIMS)


@pytest.mark.parametrize("claim_id", sorted(CASES))
def test_claim_passes_and_fails(claim_id):
    claim = ALL_CLAIMS[claim_id]
    good, bad = CASES[claim_id]
    verdict, measured = claim.check(good)
    assert verdict is Verdict.REPRODUCED, measured
    verdict, measured = claim.check(bad)
    assert verdict is Verdict.NOT_REPRODUCED, measured
    assert measured and isinstance(measured, str)


def test_partly_verdicts_in_between_for_the_later_figures():
    chaotic = ALL_CLAIMS["longer-timeframe-more-chaotic"]
    ms = np.array([10.0, 50.0, 100.0])
    assert chaotic.check({"tv_ratio": np.array([1.0, 3.0, 1.5]), "duration_ms": ms})[0] is (
        Verdict.PARTLY
    )
    blowup = ALL_CLAIMS["autodiff-gradients-blow-up"]
    assert blowup.check({"blowup_ratio": np.array([50.0, 1, 20]), "duration_ms": ms})[0] is (
        Verdict.PARTLY
    )
    where = ALL_CLAIMS["trial-averaging-straight-where"]
    lifted = {"noises": np.array([5.0, 200.0]), "roughness_10": np.array([0.2, 0.01]),
              "lift_10": np.array([0.02, 0.5])}  # fmt: skip
    assert where.check(lifted)[0] is Verdict.PARTLY
    iso = ALL_CLAIMS["linear-toy-isolated-layers-less-noisy"]
    assert iso.check({"error_w2": 0.7, "error_all": 1.0})[0] is Verdict.PARTLY


def test_partly_verdicts_in_between():
    fd = ALL_CLAIMS["fd-eta-0.1-jumps-between-two-values"]
    assert fd.check({"eta=0.1": _path([1.5, 1.5], [0, 0], [0, 0], 1)})[0] is Verdict.PARTLY
    stop = ALL_CLAIMS["firing-stops-near-1.8"]
    assert stop.check(_firing(2.05))[0] is Verdict.PARTLY
    assert stop.check({"full_w": np.linspace(0, 3, 5), "full_spikes": np.ones(5)})[0] is (
        Verdict.NOT_REPRODUCED
    )


# --- the runner -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Settings(ExperimentSettings):
    size: int = 1


@dataclasses.dataclass(frozen=True)
class _Result(ExperimentResult):
    experiment: AbstractExperiment
    settings: _Settings
    data: dict

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv

        write_csv(folder / "data.csv", ["x"], [[self.settings.size]])

    def figures(self):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, self.settings.size], color="tab:blue", label="size")
        ax.set_xlabel("x (unitless)")
        ax.set_ylabel("y (unitless)")
        return {"fig": fig}


def _always(data):
    return Verdict.REPRODUCED, f"size {data['size']}"


class _Counting(AbstractExperiment):
    name = "counting"
    title = "A counting experiment"
    section = "Test Section"
    claims = (Claim("counting-claim", "Test Section", "It counts.", "nothing", _always),)

    def __init__(self):
        self.runs = 0

    def quick(self):
        return _Settings(size=2)

    def full(self):
        return _Settings(size=3)

    def tiny(self):
        return _Settings(size=1)

    def run(self, settings, *, progress=None):
        self.runs += 1
        return _Result(self, settings, {"size": settings.size})


class _Broken(_Counting):
    name = "broken"
    title = "An experiment that raises"
    claims = (Claim("broken-claim", "Test Section", "It breaks.", "nothing", _always),)

    def run(self, settings, *, progress=None):
        self.runs += 1
        raise RuntimeError("the simulation blew up\nsecond line")


def test_runner_caches_records_failures_and_writes_the_report(tmp_path):
    ok, broken, score = _Counting(), _Broken(), ScoreVsQuadratureExperiment()
    exps = [ok, broken, score]
    seen = []
    result = reproduce(
        tmp_path, preset="tiny", experiments=exps, progress=lambda i, n, r: seen.append((i, n)),
        starting=lambda i, n, e: seen.append((e.name, i, n)),
    )  # fmt: skip
    assert seen == [("counting", 1, 3), (1, 3), ("broken", 2, 3), (2, 3),
                    ("score-vs-quadrature", 3, 3), (3, 3)]  # fmt: skip
    assert [r.status for r in result.records] == ["ran", "failed", "ran"]
    assert result.records[1].error == "RuntimeError: the simulation blew up"
    assert "Traceback" in (tmp_path / "broken" / "error.txt").read_text()
    claims = json.loads((tmp_path / "claims.json").read_text())
    required = {"id", "section", "claim", "measured", "verdict", "figures", "command", "seconds"}
    assert all(required <= set(c) for c in claims)
    by_id = {c["id"]: c for c in claims}
    assert by_id["counting-claim"]["verdict"] == "reproduced"
    assert by_id["counting-claim"]["figures"] == ["counting/fig.png"]
    assert (tmp_path / "counting" / "fig.png").is_file()
    assert by_id["broken-claim"]["verdict"] == "failed"
    assert "blew up" in by_id["broken-claim"]["measured"]
    assert (
        by_id["counting-claim"]["command"] == f"weakgrad reproduce --only counting --out {tmp_path}"
    )
    html = (tmp_path / "report.html").read_text()
    for text in ("It counts.", "href='#counting'", "id='broken'",
                 "counting/fig.png", "score-vs-quadrature/scorecheck.png", "JAX",
                 "weakgrad reproduce --only broken", "blew up"):  # fmt: skip
        assert text in html, text
    # the summary above the claims table: counts and one square per claim, by verdict
    n_claims = len(claims)
    assert f"<b>{n_claims} claims</b> from 3 experiments" in html
    assert "1 failed</span>" in html
    summary = html.split("<h2>Summary</h2>")[1].split("<h2>Claims</h2>")[0]
    assert summary.count("class='chip ") == n_claims
    assert "class='chip failed' title='broken-claim: failed'" in summary
    assert by_id["monte-carlo-blows-up-at-borders"]["figures"] == [
        "score-vs-quadrature/scorecheck.png"
    ]
    mtime = (tmp_path / "counting" / "fig.png").stat().st_mtime_ns

    again = reproduce(tmp_path, preset="tiny", experiments=exps)
    assert [r.status for r in again.records] == ["cached", "failed", "cached"]
    assert ok.runs == 1 and broken.runs == 2
    assert (tmp_path / "counting" / "fig.png").stat().st_mtime_ns == mtime
    assert again.records[0].claims == result.records[0].claims

    # other settings: rerun; --resume continues with the last run's preset and names
    reproduce(tmp_path, preset="quick", only=["counting"], experiments=exps)
    assert ok.runs == 2
    resumed = reproduce(tmp_path, resume=True, experiments=exps)
    assert resumed.preset == "quick" and [r.name for r in resumed.records] == ["counting"]
    assert resumed.records[0].status == "cached" and ok.runs == 2


def test_runner_reruns_an_interrupted_experiment(tmp_path):
    ok = _Counting()
    reproduce(tmp_path, preset="tiny", experiments=[ok])
    (tmp_path / "counting" / "data.csv").write_text("x\n99\n")  # no longer the manifest's
    assert reproduce(tmp_path, preset="tiny", experiments=[ok]).records[0].status == "ran"
    assert ok.runs == 2
    # a changed check: the cached verdict came from the old one, so the run is redone
    ok.claims = (dataclasses.replace(ok.claims[0], check=lambda d: (Verdict.PARTLY, "new")),)
    record = reproduce(tmp_path, preset="tiny", experiments=[ok]).records[0]
    assert record.status == "ran" and record.claims[0]["verdict"] == "partly"
    assert ok.runs == 3


class _Resumable(AbstractResumableExperiment):
    """Three units of work, each kept in the scratch folder; ``fail_at`` raises before one."""

    name = "resumable"
    title = "An experiment kept in progress"
    section = "Test Section"
    claims = (Claim("resumable-claim", "Test Section", "It resumes.", "nothing", _always),)

    def __init__(self):
        self.done: list[int] = []
        self.fail_at: int | None = None

    quick, full, tiny = _Counting.quick, _Counting.full, _Counting.tiny

    def run_resumable(self, settings, scratch, *, progress=None):
        kept = scratch / "units.txt"
        units = kept.read_text().split() if kept.exists() else []
        for u in range(len(units), 3):
            if u == self.fail_at:
                raise RuntimeError("killed")
            units.append(str(u))
            kept.write_text(" ".join(units))
            self.done.append(u)
        return _Result(self, settings, {"size": settings.size})


def test_runner_continues_an_experiment_stopped_midway(tmp_path):
    exp = _Resumable()
    exp.fail_at = 2
    assert reproduce(tmp_path, preset="tiny", experiments=[exp]).records[0].status == "failed"
    partial = tmp_path / "resumable" / "partial"
    assert exp.done == [0, 1] and (partial / "units.txt").read_text() == "0 1"
    exp.fail_at = None
    assert reproduce(tmp_path, preset="tiny", experiments=[exp]).records[0].status == "ran"
    assert exp.done == [0, 1, 2] and not partial.exists()  # unit 2 only; then cleared
    # Work kept from other code (here: another claim check) is not continued.
    exp.fail_at = 2
    reproduce(tmp_path / "code", preset="tiny", experiments=[exp])
    exp.claims = (dataclasses.replace(exp.claims[0], check=lambda d: (Verdict.PARTLY, "new")),)
    exp.fail_at, exp.done = None, []
    reproduce(tmp_path / "code", preset="tiny", experiments=[exp])
    assert exp.done == [0, 1, 2]
    # Work kept at other settings is not continued.
    exp.done = []
    exp.fail_at = 1
    reproduce(tmp_path, preset="quick", experiments=[exp])
    exp.fail_at, exp.done = None, []
    reproduce(tmp_path, preset="full", experiments=[exp])
    assert exp.done == [0, 1, 2] and not partial.exists()
    # run() keeps its work in a temporary folder.
    exp.done = []
    exp.run(exp.tiny())
    assert exp.done == [0, 1, 2]


def test_runner_refuses_unknown_names_and_nothing_to_resume(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment 'nope'.*counting"):
        reproduce(tmp_path, only=["nope"], experiments=[_Counting()])
    with pytest.raises(ConfigError, match="--resume"):
        reproduce(tmp_path / "empty", resume=True, experiments=[_Counting()])


def test_only_takes_a_section_name(tmp_path):
    result = reproduce(
        tmp_path, preset="tiny", only=["test-section"], experiments=[_Counting(), _Broken()]
    )
    assert [r.name for r in result.records] == ["counting", "broken"]


def test_report_keeps_earlier_runs_of_experiments_not_chosen(tmp_path):
    exps = [_Counting(), ScoreVsQuadratureExperiment()]
    reproduce(tmp_path, preset="tiny", experiments=exps)
    result = reproduce(tmp_path, preset="tiny", only=["counting"], experiments=exps)
    assert [r.name for r in result.records] == ["counting"]
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert {c["experiment"] for c in claims} == {"counting", "score-vs-quadrature"}
    assert "earlier run" in (tmp_path / "report.html").read_text()
    # another preset: the tiny run of score-vs-quadrature is not this run's
    reproduce(tmp_path, preset="quick", only=["counting"], experiments=exps)
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert {c["experiment"] for c in claims} == {"counting"}


# --- the command ------------------------------------------------------------------------


_cli = run_cli


def test_cli_only_unknown_name_exits_2(tmp_path):
    code, _, err = _cli("reproduce", "--only", "single-neuron-landscape,nope", "--out", tmp_path)
    assert code == 2
    assert "unknown experiment 'nope'" in err and "trial-averaging" in err
    assert not (tmp_path / "report.html").exists()


def test_cli_runs_one_experiment_and_prints_a_line(tmp_path):
    code, out, err = _cli(
        "reproduce", "--quick", "--only", "score-vs-quadrature", "--out", tmp_path
    )
    assert code == 0, err
    assert "[1/1] score-vs-quadrature: ran" in out and "1 experiments" in out
    assert out.index("[1/1] score-vs-quadrature: started") < out.index("1 experiments")
    assert (tmp_path / "report.html").is_file()


def test_cli_help_lists_the_experiments():
    code, out, _ = _cli("reproduce", "--help")
    assert code == 0
    for e in all_experiments():
        # rich wraps the help in a box, breaking lines anywhere: compare without spaces
        flat = "".join(ch for ch in out if not ch.isspace() and ch != "│")
        assert e.name in flat, e.name


def test_voltage_claim_without_a_spike_is_not_reproduced():
    # A positive kernel cannot steepen a trace, so "falling" alone could not fail; a zoom
    # that caught no spike has nothing to smooth and must not pass.
    check = ALL_CLAIMS["voltage-mollification-smooths-spike"].check
    data = {"raw_max_slope": 1.0, "max_slope": [0.4, 0.2, 0.1], "spike_found": False}
    verdict, measured = check(data)
    assert verdict is Verdict.NOT_REPRODUCED and "no spike" in measured
