"""The command line: files and columns scripts rely on; bad input is one line, exit 2.

Commands run in-process through ``weakgrad.cli.main`` (a subprocess costs 1.5-2 s before
any work); two tests start a real process: ``--help`` and a blow-up on sharded devices."""

import csv
import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from cli_helpers import run_cli

ROOT = Path(__file__).parents[1]


_cli = run_cli


def _subprocess(*args):
    return subprocess.run(
        [sys.executable, "-m", "weakgrad.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_help_in_a_real_process_lists_every_command():
    r = _subprocess("--help")
    assert r.returncode == 0, r.stderr
    for command in ("landscape", "gradcheck", "descend", "scorecheck", "train", "evaluate"):
        assert command in r.stdout


def test_an_internal_error_keeps_its_traceback_and_is_not_exit_2(tmp_path):
    # Only ConfigError is the user's fault; a ValueError from inside is a bug.
    def broken(settings, progress=None):
        raise ValueError("internal bug")

    with mock.patch("weakgrad.analysis.landscape.landscape_study", broken):
        with pytest.raises(ValueError, match="internal bug"):
            _cli("landscape", "--points", "3", "--out", tmp_path)


def test_landscape_writes_csv_png_and_settings(tmp_path):
    out = tmp_path / "run"
    args = "landscape --points 7 --trials 3 --noise 5 --tau-ms 20 --w-max 2.4 --seed 3".split()
    r = _cli(*args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    with open(out / "landscape.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7
    assert {"w", "current", "loss_mean", "loss_sem", "spikes_mean"} <= set(rows[0])
    assert float(rows[-1]["w"]) == pytest.approx(2.4)
    assert float(rows[-1]["current"]) == pytest.approx(2.4 * 34.6)
    assert (out / "landscape.png").stat().st_size > 10_000
    meta = json.loads((out / "landscape.json").read_text())
    assert meta["trials"] == 3 and meta["dtype"] == "float32"
    # rerun with the same seed: identical numbers
    r2 = _cli(*args, "--out", str(tmp_path / "again"))
    assert r2.returncode == 0
    assert (tmp_path / "again" / "landscape.csv").read_text() == (out / "landscape.csv").read_text()


def test_landscape_x64(tmp_path):
    r = _cli("landscape", "--points", "3", "--tau-ms", "5", "--x64", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "landscape.json").read_text())["dtype"] == "float64"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dt-ms", "0"], "--dt-ms must be > 0"),
        (["--points", "1"], "--points must be >= 2"),
        (["--noise", "-1"], "--noise must be >= 0"),
        (["--w-min", "2", "--w-max", "1"], "--w-max (1.0) must be greater than --w-min (2.0)"),
        (["--tau-ms", "-3"], "--tau-ms must be positive"),
        (["--dt-ms", "0.5", "--tau-ms", "10"], "above the 0.25 ms limit"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, needle):
    r = _cli("landscape", *args, "--out", str(tmp_path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_blown_up_simulation_is_one_line_exit_1_even_sharded(tmp_path):
    # The CLI shards the sweep over one device per core; a blow-up must still come back as
    # a message, not an aborted process.
    r = _subprocess(
        "landscape", "--points", "4", "--tau-ms", "5", "--i0", "1e7", "--out", str(tmp_path)
    )
    assert r.returncode == 1, r.stderr[-500:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "blew up" in lines[0] and "w=" in lines[0], r.stderr[-500:]
    assert not (tmp_path / "landscape.csv").exists()


def test_gradcheck_writes_csv_figures_and_settings(tmp_path):
    out = tmp_path / "gc"
    args = [
        "gradcheck", "--model", "ann", "--estimators", "regression,node,autodiff",
        "--samples", "4,16", "--sigmas", "0.01,0.1", "--repeats", "2", "--batch", "4",
        "--out", str(out),
    ]  # fmt: skip
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    with open(out / "gradcheck.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 2 * 2 * 2
    assert {"estimator", "samples", "sigma", "rel_error", "cosine", "repeat", "evals"} <= set(
        rows[0]
    )
    auto = [r for r in rows if r["estimator"] == "autodiff"]
    assert all(float(r["rel_error"]) < 1e-6 and float(r["cosine"]) > 0.999999 for r in auto)
    node = [r for r in rows if r["estimator"] == "node"]
    assert {int(r["evals"]) for r in node} == {5, 17}
    for name in ["gradcheck_vs_samples.png", "gradcheck_vs_sigma.png", "gradcheck_heatmap.png"]:
        assert (out / name).stat().st_size > 10_000
    heat = np.load(out / "gradcheck_heatmap.npz")
    assert heat["reference"].shape == heat["estimate"].shape == (100, 10)
    meta = json.loads((out / "gradcheck.json").read_text())
    assert meta["parameters_compared"] == 1010 and meta["layer"] == "output"
    assert "node: cos" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "cnn"], "--model must be one of linear, ann, hh-short"),
        (["--estimators", "magic"], "--estimators: unknown magic; choose from"),
        (["--samples", "0,10"], "--samples must list positive ints"),
        (["--sigmas", "a,b"], "--sigmas must be comma-separated floats"),
        (["--layer", "middle"], "--layer must be one of output, hidden, all"),
        (
            ["--data-dir", "/nonexistent/mnist"],
            "MNIST data folder /nonexistent/mnist does not exist",
        ),
    ],
)
def test_gradcheck_bad_input(tmp_path, args, needle):
    r = _cli("gradcheck", *args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_landscape_complete_graph_zoom_mollify_and_2d(tmp_path):
    out = tmp_path / "cg"
    r = _cli(
        "landscape", "--task", "complete-graph", "--zoom", "100", "200", "--points", "40",
        "--tau-ms", "100", "--dt-ms", "0.05", "--mollify", "10", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open(out / "landscape.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40 and float(rows[0]["w"]) == 100.0 and float(rows[-1]["w"]) == 200.0
    with open(out / "landscape_mollified.csv") as f:
        moll = list(csv.DictReader(f))
    assert {"w", "loss_mean", "loss_mollified", "valid"} <= set(moll[0])
    assert (out / "bands.csv").exists() and "band" in r.stdout
    meta = json.loads((out / "landscape.json").read_text())
    assert meta["task"] == "complete-graph" and meta["zoom"] == [100.0, 200.0]

    out2 = tmp_path / "cg2d"
    r = _cli(
        "landscape", "--task", "complete-graph", "--neurons", "3", "--2d", "--points", "5",
        "--tau-ms", "20", "--dt-ms", "0.05", "--center", "5", "--out", str(out2),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open(out2 / "landscape2d.csv") as f:
        assert len(list(csv.DictReader(f))) == 25
    assert (out2 / "landscape2d.png").stat().st_size > 10_000
    assert (out2 / "landscape2d.npz").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--2d"], "--2d and --neurons need --task complete-graph"),
        (["--task", "ring"], "--task must be one of single-neuron, complete-graph"),
        (["--task", "complete-graph", "--direction", "up"], "--direction must be one of"),
        (["--task", "complete-graph", "--2d"], "--2d needs at least 2 weights"),
        (["--mollify", "0"], "--mollify must be a positive half-width"),
    ],
)
def test_landscape_new_options_bad_input(tmp_path, args, needle):
    r = _cli("landscape", *args, "--out", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr


def test_descend_writes_path_and_outcome(tmp_path):
    land = tmp_path / "land"
    r = _cli("landscape", "--points", "61", "--tau-ms", "100", "--out", str(land))
    assert r.returncode == 0, r.stderr
    for method in ["fd", "regression", "mollified"]:
        out = tmp_path / method
        r = _cli(
            "descend", "--method", method, "--landscape", str(land / "landscape.csv"),
            "--steps", "20", "--growth", "1.05", "--neighbours", "3", "--width", "0.2",
            "--out", str(out),
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        with open(out / "path.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 21 and {"step", "w", "loss"} <= set(rows[0])
        assert float(rows[0]["w"]) == pytest.approx(1.5)
        assert (out / "path.png").stat().st_size > 10_000
        assert json.loads((out / "descend.json").read_text())["method"] == method
    bad = _cli("descend", "--method", "newton", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "--method must be one of fd, regression, mollified" in bad.stderr


def test_scorecheck(tmp_path):
    r = _cli("scorecheck", "--samples", "20,200", "--points", "41", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "scorecheck.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 41 and {"x", "reference", "monte_carlo_20", "quadrature_200"} <= set(
        rows[0]
    )
    errs = json.loads((tmp_path / "scorecheck.json").read_text())["errors"]
    assert errs["quadrature_20"]["rms_border"] < errs["monte_carlo_20"]["rms_border"]
    assert (tmp_path / "scorecheck.png").stat().st_size > 10_000


def test_train_command_runs_a_config_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", "configs/mnist-linear.toml", "--set", "train.steps=4", "--set",
            "train.eval_every=2", "--set", "train.eval_size=20", "--set", "task.train_size=40",
            "--set", "estimator.samples=8", "--out", str(out)]  # fmt: skip
    args[1] = str(ROOT / args[1])
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and {"test_accuracy", "seconds"} <= set(summary)
    again = _cli("train", "--out", str(out))
    assert again.returncode == 2 and "already holds a run" in again.stderr
    resumed = _cli("train", "--resume", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    bad = _cli("train", "--set", "estimator.samples=-3", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "estimator.samples = -3 must be > 0" in bad.stderr
    scored = _cli("evaluate", str(out))
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["step"] == 4 and result["test_accuracy"] == pytest.approx(
        summary["test_accuracy"]
    )
    assert "test accuracy" in scored.stderr
    wrong = _cli("evaluate", str(out), "--draws", "4")  # a linear network has no node noise
    # eval_draws is a key of the node estimator's section since 744e242
    assert wrong.returncode == 2 and "estimator.eval_draws = 4 averages predictions" in wrong.stderr
    missing = _cli("evaluate", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "config.json does not exist" in missing.stderr


def _made_up_gradcheck(tmp_path=None):
    from weakgrad.analysis.diagnostics import GradCheck
    from weakgrad.analysis.gradcheck import GradcheckSettings, GradcheckStudy, GradientHeatmap

    settings = GradcheckSettings(
        estimators=("regression", "node"), samples=(10, 100), sigmas=(0.01, 0.1), repeats=1
    )
    errors = {  # (estimator, samples, sigma) -> rel_error; at S=100 the best sigmas differ
        ("regression", 10, 0.01): 0.9, ("regression", 10, 0.1): 0.8,
        ("regression", 100, 0.01): 0.5, ("regression", 100, 0.1): 0.3,
        ("node", 10, 0.01): 0.4, ("node", 10, 0.1): 0.6,
        ("node", 100, 0.01): 0.1, ("node", 100, 0.1): float("nan"),
    }  # fmt: skip
    rows = [
        {"estimator": n, "samples": s, "sigma": sg, "repeat": 0, "rel_error": e,
         "cosine": 1 - e, "evals": s, "seconds": 0.1}
        for (n, s, sg), e in errors.items()
    ]  # fmt: skip
    check = GradCheck(
        rows, np.ones(6), {"regression": np.zeros(6), "node": np.ones(6)}, np.arange(6)
    )
    heat = GradientHeatmap(np.ones((3, 2)), np.zeros((3, 2)), "regression", 1)
    return GradcheckStudy(settings, check, 6, "made up", heat)


def test_gradcheck_result_picks_the_best_sigma_and_saves_itself(tmp_path):
    r = _made_up_gradcheck()
    best = r.best()
    assert best["regression"]["sigma"] == 0.1 and best["node"]["sigma"] == 0.01  # NaN loses
    assert r.summary() == (
        "8 estimates; at S=100 regression: cos 0.700 (sigma 0.1); node: cos 0.900 (sigma 0.01)"
    )
    assert r.save(tmp_path) == tmp_path / "gradcheck.csv"
    names = {"gradcheck.csv", "gradcheck.json", "gradcheck_heatmap.npz", "gradcheck_heatmap.png",
             "gradcheck_vs_samples.png", "gradcheck_vs_sigma.png", "manifest.json"}  # fmt: skip
    assert {p.name for p in tmp_path.iterdir()} == names
    meta = json.loads((tmp_path / "gradcheck.json").read_text())
    assert meta["parameters_compared"] == 6 and meta["data"] == "made up"
    assert meta["duration_ms"] is None and len(meta["summary"]) == 8
    heat = np.load(tmp_path / "gradcheck_heatmap.npz")
    assert heat["estimate"].shape == (3, 2) and str(heat["estimator"]) == "regression"


def test_gradcheck_settings_reject_what_the_grid_cannot_run():
    from weakgrad.analysis.gradcheck import GradcheckSettings
    from weakgrad.errors import ConfigError

    with pytest.raises(ConfigError, match="--estimators: unknown magic; choose from regression"):
        GradcheckSettings(estimators=("node", "magic"))
    with pytest.raises(ConfigError, match="--sigmas must list positive floats"):
        GradcheckSettings(sigmas=(0.1, 0.0))
    with pytest.raises(ConfigError, match="--readout must be one of"):
        GradcheckSettings(readout="spikes")
    assert GradcheckSettings(layer="all").layers == (0, 1)
    assert GradcheckSettings().estimates == 3 * 3 * 3 * 3
