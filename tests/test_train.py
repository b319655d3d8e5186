"""Training: configs validated with clear errors, metrics and checkpoints, exact resume."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest

from weakgrad.config import ConfigError, config_from_dict, load_config
from weakgrad.training import evaluate, train


def _cfg(tmp_path, text="", overrides=()):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path, list(overrides))


SMALL = [
    "task.model=ann", "task.train_size=60", "train.steps=6", "train.batch_size=5",
    "train.eval_every=3", "train.eval_size=20", "train.checkpoint_every=2",
    "estimator.samples=12", "estimator.sigma=0.05",
]  # fmt: skip


def test_config_defaults_file_and_overrides(tmp_path):
    cfg = _cfg(tmp_path, "[estimator]\nname = 'smoothing'\nsamples = 40\n", ["train.steps=7"])
    assert cfg.estimator.name == "smoothing" and cfg.estimator.samples == 40
    assert cfg.train.steps == 7 and cfg.optimizer.name == "adam"
    assert load_config(None, ["optimizer.learning_rate=1"]).optimizer.learning_rate == 1.0
    assert load_config(None, ["optimizer.layer_scale=[1, 30]"]).optimizer.layer_scale == (1, 30)
    node = load_config(None, ["estimator.name=node", 'estimator.hold="run"']).estimator
    assert node.name == "node" and node.hold == "run" and node.hold_steps(0.1) is None
    # A whole section replaced by a TOML inline table: the way to switch estimators.
    cfg = load_config(None, ["estimator.samples=7", 'estimator={name="autodiff", clip=2}'])
    assert cfg.estimator.name == "autodiff" and cfg.estimator.clip == 2.0
    assert load_config(None, ['estimator={name="node"}', "estimator.sigma=3"]).estimator.sigma == 3


def test_layer_scale_multiplies_each_layers_update(tmp_path):
    import jax.numpy as jnp
    import optax

    from weakgrad.training.optim import scale_by_layer, standard_promotion

    params = ({"w": jnp.ones(2)}, {"w": jnp.ones(3)})
    opt = standard_promotion(optax.chain(optax.sgd(0.1), scale_by_layer((1.0, 30.0))))
    updates, _ = opt.update(params, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(updates[0]["w"]), -0.1)
    np.testing.assert_allclose(np.asarray(updates[1]["w"]), -3.0, rtol=1e-6)
    from weakgrad.config import OptimizerConfig
    from weakgrad.training.optim import make_optimizer

    cosine = make_optimizer(OptimizerConfig(name="sgd", learning_rate=0.5, schedule="cosine"), 4)
    state, sizes = cosine.init(params), []
    for _ in range(5):
        u, state = cosine.update(params, state, params)
        sizes.append(float(np.abs(np.asarray(u[0]["w"])).max()))
    np.testing.assert_allclose(sizes, [0.5, 0.5 * (1 + np.cos(np.pi / 4)) / 2, 0.25, sizes[3], 0])
    # Per-layer lists are checked against the task's network when the config is read.
    with pytest.raises(ConfigError, match=r"has 3 entries; this network has 2 layers"):
        _cfg(tmp_path, "", ["optimizer.layer_scale=[1, 2, 3]", "train.steps=1"])
    with pytest.raises(ConfigError, match=r"train.eval_size = 401 exceeds the 400 validation"):
        train(_cfg(tmp_path, "", ["train.eval_size=401", "train.steps=1"]), tmp_path / "run1")
    over = ["estimator.name=node", "estimator.layer_sigma=[1, 2, 3]", "train.steps=1"]
    with pytest.raises(ConfigError, match=r"layer_sigma = \[1.0, 2.0, 3.0\] has 3 entries"):
        _cfg(tmp_path, "", over)


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        (
            "[estimator]\nsamplez = 3\n",
            [],
            "unknown key estimator.samplez; the keys of estimator 'regression' are",
        ),
        ("[trainer]\nsteps = 3\n", [], "unknown section [trainer]"),
        ("[train]\nsteps = 'ten'\n", [], "train.steps = 'ten' has type str; it must be a int"),
        ("", ["estimator.name=magic"], "estimator.name = 'magic' is not allowed; choose one of"),
        ("", ["estimator.sigma=-1"], "estimator.sigma = -1.0 must be > 0"),
        ("", ["train.batch_size=true"], "train.batch_size = True has type bool"),
        ("", ["steps=3"], "--set 'steps=3' must look like section.key=value"),
        ("[train\n", [], "is not valid TOML"),
        ("", ["optimizer.layer_scale=[1, -2]"], "optimizer.layer_scale = [1, -2] must be a list"),
        (
            "",
            ["estimator.name=node", "estimator.hold_ms=-1"],
            "estimator.hold_ms = -1.0 must be > 0",
        ),
        (
            "",
            ["estimator.name=node", "estimator.hold_ms=inf"],
            'estimator.hold_ms = inf must be a finite number (hold = "run" holds',
        ),
        (
            "",
            ["estimator.name=node", "estimator.hold_ms=2", "estimator.hold='run'"],
            "estimator.hold = 'run' and estimator.hold_ms = 2.0 both say",
        ),
        (
            "",
            ["estimator.name=node", "estimator.hold=5"],
            "estimator.hold = 5 has type int; it must be a str",
        ),
        (
            "",
            ["estimator.name=node", "estimator.hold_ms=5"],
            'estimator.hold_ms = 5.0 needs a network simulated in time (task.model = "hh"',
        ),
        (
            "[estimator]\nname = 'node'\nsamples = 8\n",
            ["estimator.name=autodiff"],
            "estimator.samples does not apply to estimator.name = 'autodiff'; it is a key of "
            "regression, smoothing, spsa, node, node-stepwise, mollified. Leave it out, or switch "
            "estimators by replacing the section: --set 'estimator={name=\"autodiff\", ...}'",
        ),
        ("", ["estimator.clip=1"], "it is a key of autodiff"),
        ("", ["task.cells=3"], "task.cells does not apply to task.name = 'mnist'"),
        ("", ["task.duration_ms=5"], "task.duration_ms applies to HH networks only (task.model"),
        (
            "",
            ["task.name=spike-train", "train.batch_size=3"],
            "train.batch_size applies to the mnist task only",
        ),
        ("", ["task.model=cnn"], "task.model = 'cnn' is not allowed; choose one of linear, ann"),
        ("", ["estimator=3"], "or section={...} (a TOML inline table replacing the section)"),
        ("", ["optimizer.weight_decay=-1"], "optimizer.weight_decay = -1.0 must be >= 0"),
        ("", ["task.shift_px=-1"], "task.shift_px = -1 must be >= 0"),
        ("", ["train.ema_decay=1"], "train.ema_decay = 1.0 must be in [0, 1)"),
        ("", ["task.shift_px=14"], "task.shift_px = 14 would move digits off the 28 x 28"),
        (
            "",
            ["estimator.name=node", "estimator.layer_samples=[8, 1]"],
            "must be a list of whole numbers >= 2",
        ),
        (
            "",
            ["estimator.name=node", "estimator.alternate=false", "estimator.layer_samples=[8, 4]"],
            "estimator.layer_samples = [8, 4] needs estimator.alternate = true",
        ),
        (
            "",
            ["estimator.name=node", "estimator.eval_draws=8"],
            "estimator.eval_draws = 8 averages predictions over the noise of node perturbation "
            'on an MNIST HH network (task.model = "hh")',
        ),
        (
            "",
            ["estimator.name=node", "estimator.eval_draws=-1"],
            "estimator.eval_draws = -1 must be > 0",
        ),
        ("", ["train.eval_draws=8"], "unknown key train.eval_draws; the keys of [train] are"),
        (
            "[estimator]\nname = 'node'\nhold_ms = nan\n",
            [],
            'estimator.hold_ms = nan must be a finite number (hold = "run" holds',
        ),
        ("", ["optimizer.learning_rate=inf"], "optimizer.learning_rate = inf must be a finite"),
        ("[task]\nmodel = 'hh'\ndt_ms = -nan\n", [], "task.dt_ms = nan must be a finite number"),
        (
            "",
            ["estimator.name=node", "estimator.layer_sigma=[inf, 1]"],
            "estimator.layer_sigma = [inf, 1] must be a list of positive finite numbers",
        ),
        ("", ["optimizer.layer_scale=[1, nan]"], "optimizer.layer_scale = [1, nan] must be a"),
        (
            "",
            ["estimator.name=regression", "estimator.layer_sigma=[1, 2]"],
            "estimator.layer_sigma does not apply to estimator.name = 'regression'; it is a "
            "key of node.",
        ),
    ],
)
def test_bad_configs_name_the_field(tmp_path, text, overrides, needle):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, text, overrides)
    assert needle in str(err.value)


def test_a_binary_or_non_utf8_config_file_is_named(tmp_path):
    path = tmp_path / "weights.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff binary")
    with pytest.raises(ConfigError, match=r"config file .*weights.toml is not UTF-8 text \(byte"):
        load_config(path)
    path.write_bytes("[train]\nsteps = 3 # caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"weights.toml is not UTF-8 text .* is it a TOML file"):
        load_config(path)
    path.write_bytes("[train]\nsteps = 3 # caf\u00e9\n".encode())
    assert load_config(path).train.steps == 3  # UTF-8 is read as it was


def _params(run):
    with np.load(run / "checkpoint.npz") as d:
        return [d[f"leaf_{i}"] for i in range(int(d["n_leaves"]))], int(d["step"])


@pytest.mark.parametrize(
    "extra",
    [[], ["task.shift_px=2"], ["train.ema_decay=0.9"]],
    ids=["plain", "shifted-digits", "averaged"],
)
def test_a_killed_run_resumes_to_the_same_parameters(tmp_path, extra):
    cfg = load_config(None, SMALL + extra)
    full = tmp_path / "full"
    train(cfg, full)
    killed = tmp_path / "killed"

    class Killed(Exception):
        pass

    def die(step, row):
        if step == 3:  # after the checkpoint at step 2 (and one more step)
            raise Killed

    with pytest.raises(Killed):
        train(cfg, killed, progress=die)
    assert _params(killed)[1] == 4  # checkpoint after steps 0-3 (every 2 steps)
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg, killed)
    summary = train(cfg, killed, resume=True)
    a, step_a = _params(full)
    b, step_b = _params(killed)
    assert step_a == step_b == 6
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with open(killed / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(6))
    assert {"step", "loss", "evals", "seconds", "val_loss", "val_accuracy"} <= set(rows[0])
    assert rows[2]["val_accuracy"] != "" and rows[0]["val_accuracy"] == ""
    assert 0 <= summary["test_accuracy"] <= 1 and summary["steps"] == 6
    assert json.loads((killed / "config.json").read_text())["train"]["steps"] == 6
    assert config_from_dict(json.loads((killed / "config.json").read_text())) == cfg
    # Figures are drawn by the caller (the CLI), from the result, not inside the loop.
    assert not (killed / "training.png").exists()
    summary.save_figures(killed)
    assert (killed / "training.png").stat().st_size > 10_000
    if extra == ["task.shift_px=2"]:  # the shifts are drawn, and change what is learned
        plain = tmp_path / "plain"
        train(load_config(None, SMALL), plain)
        assert not all(np.array_equal(x, y) for x, y in zip(a, _params(plain)[0], strict=True))


def test_ann_with_regression_learns_a_small_problem(tmp_path):
    cfg = load_config(
        None,
        SMALL[:2] + ["train.steps=40", "train.batch_size=10", "train.eval_every=40",
                     "train.eval_size=20", "train.checkpoint_every=40", "estimator.samples=60",
                     "estimator.sigma=0.05", "optimizer.learning_rate=0.02"],
    )  # fmt: skip
    train(cfg, tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


@pytest.mark.parametrize(
    "name", ["mnist-linear", "mnist-ann", "mnist-hh-short", "mnist-hh-long", "spike-train"]
)
def test_shipped_configs_are_valid(name):
    from pathlib import Path

    path = Path(__file__).parents[1] / "configs" / f"{name}.toml"
    cfg = load_config(path)
    assert cfg.task.name in ("mnist", "spike-train") and cfg.train.steps > 0
    assert config_from_dict(cfg.to_dict()) == cfg  # what a run's config.json holds
    # Every config runs as the autodiff baseline with one override (item 6 of the issue),
    # the one the README and the configs' comments give.
    base = load_config(path, ['estimator={name="autodiff", clip=1.0}'])
    assert base.estimator.name == "autodiff" and base.estimator.clip == 1.0
    assert base.task == cfg.task and base.train == cfg.train


def test_spike_train_task_trains_and_draws_a_raster(tmp_path):
    cfg = load_config(
        None,
        ["task.name=spike-train", "task.cells=3", "task.hidden=5", "task.duration_ms=30",
         "task.rate_hz=60", "train.steps=3", "train.eval_every=1", "train.checkpoint_every=3",
         "estimator.samples=10", "estimator.sigma=0.5", "train.keep_best=true"],
    )  # fmt: skip
    summary = train(cfg, tmp_path)
    assert summary["task"] == "spike-train" and np.isfinite(summary["final_loss"])
    summary.save_figures(tmp_path)
    assert (tmp_path / "raster.png").stat().st_size > 5_000
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["val_loss"] != "" and rows[-1]["val_accuracy"] == ""
    # No accuracy here: the best evaluation is the lowest loss.
    losses = [float(r["val_loss"]) for r in rows]
    assert summary["best"]["step"] == int(np.argmin(losses)) + 1
    assert summary["best"]["final_loss"] == pytest.approx(min(losses), rel=1e-5)


def test_node_estimator_hold_from_config():
    from weakgrad.config import NodeSection
    from weakgrad.estimators import Alternate, NodePerturbation

    def hold(alternate=False, **kw):
        est = NodeSection(alternate=alternate, **kw).build(dt_ms=0.1)
        return est.estimator.hold if isinstance(est, Alternate) else est.hold

    assert hold() == 1 and hold(hold="step") == 1 and hold(hold="run") is None
    assert hold(hold_ms=5.0) == 50 and hold(hold="run", alternate=True) is None
    assert isinstance(NodeSection(alternate=False).build(), NodePerturbation)


def test_node_estimator_sigma_and_pairs_from_config(tmp_path):
    from weakgrad.config import NodeSection

    cfg = NodeSection(sigma=0.5, samples=7, antithetic=True, alternate=False)
    est = cfg.build()
    assert est.sigma == 0.5 and est.antithetic and est.samples == 8  # pairs: rounded up
    est = dataclasses.replace(cfg, layer_sigma=(6.0, 1.0)).build()
    assert est.sigma == (6.0, 1.0)
    est = dataclasses.replace(cfg, layer_samples=(12, 3), alternate=True).build()
    assert est.estimator.samples == (12, 4)  # each count rounded up to pairs
    over = ["estimator.name=node", "estimator.layer_samples=[8, 4, 4]", "train.steps=1"]
    with pytest.raises(ConfigError, match=r"layer_samples = \[8, 4, 4\] has 3 entries"):
        load_config(None, over)


def test_weight_decay_shrinks_weights_not_biases_at_the_learning_rate():
    import jax.numpy as jnp

    from weakgrad.config import OptimizerConfig
    from weakgrad.training.optim import make_optimizer

    params = (
        {"weight": jnp.ones(2), "bias": jnp.ones(2)},
        {"weight": jnp.full(3, 2.0), "bias": jnp.ones(3)},
    )
    cfg = OptimizerConfig(name="sgd", learning_rate=0.1, layer_scale=(1.0, 10.0), weight_decay=0.5)
    opt = make_optimizer(cfg)
    zero = tuple({k: jnp.zeros_like(v) for k, v in layer.items()} for layer in params)
    u, _ = opt.update(zero, opt.init(params), params)
    # -lr * wd * W, whatever the layer's scale; biases untouched.
    np.testing.assert_allclose(np.asarray(u[0]["weight"]), -0.05)
    np.testing.assert_allclose(np.asarray(u[1]["weight"]), -0.1)
    assert not np.any(np.asarray(u[0]["bias"])) and not np.any(np.asarray(u[1]["bias"]))
    # A gradient still goes through the layer scale.
    ones = tuple({k: jnp.ones_like(v) for k, v in layer.items()} for layer in params)
    u, _ = opt.update(ones, opt.init(params), params)
    np.testing.assert_allclose(np.asarray(u[1]["bias"]), -1.0, rtol=1e-6)


def test_keep_best_keeps_the_best_validation_state_across_a_resume(tmp_path):
    over = [*SMALL, "train.keep_best=true", "train.eval_every=1"]
    full = tmp_path / "full"
    summary = train(load_config(None, over), full)
    with open(full / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    ranks = [(float(r["val_accuracy"]), -float(r["val_loss"])) for r in rows]
    best_step = int(np.argmax([r[0] * 1e6 + r[1] for r in ranks])) + 1  # accuracy, then loss
    assert ranks[best_step - 1] == max(ranks)
    best = summary["best"]
    assert best["step"] == best_step
    assert best["val_accuracy"] == pytest.approx(float(rows[best_step - 1]["val_accuracy"]))
    assert 0 <= best["test_accuracy"] <= 1 and best["test_size"] == summary["test_size"]
    # best.npz holds what a run stopped at that step ends with.
    short = tmp_path / "short"
    train(load_config(None, [*SMALL, f"train.steps={best_step}"]), short)
    with np.load(full / "best.npz") as d:
        kept = [d[f"leaf_{i}"] for i in range(int(d["n_leaves"]))]
    for x, y in zip(kept, _params(short)[0], strict=True):
        np.testing.assert_array_equal(x, y)

    class Killed(Exception):
        pass

    def die(step, row):
        if step == 4:
            raise Killed

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        train(load_config(None, over), killed, progress=die)
    resumed = train(load_config(None, over), killed, resume=True)
    assert resumed["best"] == best
    with np.load(killed / "best.npz") as d:
        for i, x in enumerate(kept):
            np.testing.assert_array_equal(d[f"leaf_{i}"], x)


def test_ema_evaluates_the_bias_corrected_average_of_the_iterates(tmp_path):
    import jax

    from weakgrad.tasks.mnist_task import MnistTask

    decay, n = 0.5, 4
    iterates = []
    for k in range(1, n + 1):  # constant learning rate: the run to step k is a prefix
        train(load_config(None, [*SMALL, f"train.steps={k}"]), tmp_path / f"p{k}")
        iterates.append(_params(tmp_path / f"p{k}")[0][:4])  # the 4 parameter arrays
    weights = np.array([(1 - decay) * decay ** (n - k) for k in range(1, n + 1)])
    expected = [sum(w * it[i] for w, it in zip(weights, iterates, strict=True)) / weights.sum()
                for i in range(4)]  # fmt: skip
    cfg = load_config(None, [*SMALL, f"train.steps={n}", f"train.ema_decay={decay}"])
    summary = train(cfg, tmp_path / "ema")
    leaves = _params(tmp_path / "ema")[0]
    for i, want in enumerate(expected):
        np.testing.assert_allclose(leaves[-4 + i] / (1 - decay**n), want, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(leaves[i], iterates[-1][i])  # the iterate is unchanged
    # The test metrics are those of the average, not of the last iterate.
    task = MnistTask.from_config(cfg)
    params = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(task.initial_params()), [np.asarray(e) for e in expected]
    )
    k_eval = jax.random.fold_in(jax.random.split(jax.random.key(0))[1], 2**31 - 1)
    ref = task.score(params, k_eval)
    assert summary["test_loss"] == pytest.approx(ref["test_loss"], rel=1e-4)
    last = train(load_config(None, [*SMALL, f"train.steps={n}"]), tmp_path / "last")
    assert summary["test_loss"] != pytest.approx(last["test_loss"], rel=1e-6)


HH_SMALL = [
    "task.model=hh", "task.duration_ms=5", "task.dt_ms=0.1", "task.train_size=40",
    "train.steps=4", "train.batch_size=4", "train.eval_every=2", "train.eval_size=20",
    "train.checkpoint_every=2", "estimator.name=node", "estimator.samples=2",
    "estimator.layer_sigma=[6, 1]", 'estimator.hold="run"', "estimator.alternate=true",
]  # fmt: skip


def test_eval_draws_scores_the_smoothed_network_and_evaluate_rescores_a_run(tmp_path):
    run = tmp_path / "run"
    # eval_size = test_size = 200 (not 20): validation runs in the test's chunk of 200 digits
    # and reuses the compiled smoothed and noise-free evaluations (compiling dominates this test;
    # the extra simulations cost ~0.1 s). Every assertion below is exact or deterministic.
    over = [*HH_SMALL, "estimator.eval_draws=3", "train.ema_decay=0.5", "train.keep_best=true",
            "train.eval_size=200", "train.test_size=200"]  # fmt: skip
    summary = train(load_config(None, over), run)
    assert summary["eval_draws"] == 3
    with open(run / "metrics.csv") as f:
        last = list(csv.DictReader(f))[-1]
    # evaluate() reproduces what the run reported, smoothed and noise-free (the average too).
    again = evaluate(run)
    assert again["step"] == 4 and again["eval_draws"] == 3
    assert again["val_loss"] == pytest.approx(float(last["val_loss"]), rel=1e-6)
    assert again["val_accuracy"] == pytest.approx(float(last["val_accuracy"]), abs=1e-6)
    for k in ("test_loss", "test_accuracy", "noise_free_test_loss", "noise_free_test_accuracy"):
        assert again[k] == pytest.approx(summary[k], rel=1e-6), k
    plain = evaluate(run, draws=0)
    assert "noise_free_test_loss" not in plain
    # Autodiff trains the noise-free network: its section has no eval_draws (nor noise keys).
    ad = train(load_config(None, [*over, 'estimator={name="autodiff"}']), tmp_path / "ad")
    assert "noise_free_test_accuracy" not in ad and "eval_draws" not in ad
    assert plain["test_loss"] == pytest.approx(summary["noise_free_test_loss"], rel=1e-6)
    assert plain["test_loss"] != pytest.approx(summary["test_loss"], rel=1e-3)
    assert evaluate(run, draws=3, best=True)["step"] == summary["best"]["step"]
    with pytest.raises(FileNotFoundError, match=r"config.json does not exist: evaluate needs"):
        evaluate(tmp_path)
    with pytest.raises(ConfigError, match=r"estimator.eval_draws = 2 averages predictions"):
        evaluate(tmp_path / "ad", draws=2)  # autodiff: no noise to average over


# --- contracts over the whole registry ----------------------------------------------------


def _sections(kind):
    from weakgrad import registry

    return dict(registry.estimator_sections() if kind == "estimator" else registry.task_sections())


@pytest.mark.parametrize("kind", ["estimator", "task"])
def test_every_section_rejects_the_keys_of_the_others(kind):
    """Each tagged section takes only its own keys: a key of any other section of the same
    kind is a ConfigError naming the key and the sections that take it."""
    sections = _sections(kind)
    assert len(sections) >= 2
    checked = 0
    for name, cls in sections.items():
        for other in sections.values():
            for key in sorted(set(other.keys()) - set(cls.keys())):
                with pytest.raises(ConfigError) as err:
                    config_from_dict({kind: {"name": name, key: getattr(other(), key)}})
                takers = [n for n, c in sections.items() if key in c.keys()]
                assert f"{kind}.{key}" in str(err.value) and ", ".join(takers) in str(err.value)
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("kind", ["estimator", "task"])
def test_every_section_round_trips_and_builds(kind):
    from weakgrad import registry

    for name, cls in _sections(kind).items():
        cfg = config_from_dict({kind: {"name": name}})
        section = getattr(cfg, kind)
        assert type(section) is cls and section.name == name
        assert config_from_dict(cfg.to_dict()) == cfg
        assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
        if kind == "estimator":
            from weakgrad.estimators import AbstractEstimator

            assert isinstance(section.build(dt_ms=0.1), AbstractEstimator)
    # gradcheck builds every configurable estimator through the same section, with the
    # section's own rounding of the sample count (one table, one rule).
    from weakgrad.config import config_from_dict as load
    from weakgrad.estimators import AbstractEstimator

    for name in _sections("estimator"):
        est = registry.grid_estimator(name, samples=7, sigma=0.1, layers=None, dim=4)
        assert isinstance(est, AbstractEstimator), name
    grid = registry.grid_estimator("smoothing", samples=7, sigma=0.1, layers=None, dim=4)
    cfg = load({"estimator": {"name": "smoothing", "samples": 7, "sigma": 0.1, "alternate": False}})
    assert grid == cfg.estimator.build() and grid.samples == 8
    with pytest.raises(ConfigError, match=r"unknown estimator 'magic'; choose from regression"):
        registry.grid_estimator("magic", samples=7, sigma=0.1, layers=None, dim=4)


def test_config_json_round_trips_for_rich_configs():
    over = [
        "task.model=hh", "task.readout_scale=2", "task.train_size=50",
        "estimator.name=node", "estimator.layer_sigma=[6, 1]", "estimator.layer_samples=[4, 2]",
        "estimator.hold_ms=2.5", "estimator.eval_draws=4", "optimizer.layer_scale=[1, 30]",
    ]  # fmt: skip
    for cfg in [
        load_config(None, over),
        load_config(None, ["task.name=spike-train", "task.nwb_file='x.nwb'"]),
        load_config(None, ['estimator={name="autodiff", clip=0.5}']),
    ]:
        data = json.loads(json.dumps(cfg.to_dict()))
        assert config_from_dict(data) == cfg


def test_legacy_config_json_is_upgraded():
    """Run folders written before the tagged sections (every key, sentinel numbers) still
    load for evaluate and --resume."""
    from weakgrad.config import upgrade_legacy

    legacy = {
        "task": {"name": "mnist", "model": "hh", "duration_ms": 100.0, "dt_ms": 0.1,
                 "init": "gaussian", "data_dir": "", "train_size": 0, "shift_px": 0,
                 "readout": "voltage", "readout_scale": 0.0, "cells": 10, "hidden": 30,
                 "rate_hz": 20.0, "correlation": 0.0, "input_gain": 10.0,
                 "loss": "van-rossum", "tau_ms": 10.0, "nwb_file": ""},
        "estimator": {"name": "node", "samples": 8, "sigma": 1.0, "alternate": True,
                      "antithetic": False, "clip": 0.0, "hold_ms": float("inf"),
                      "layer_sigma": [6.0, 1.0], "layer_samples": [12, 8]},
        "optimizer": {"name": "adam", "learning_rate": 0.01, "layer_scale": [1.0, 30.0],
                      "schedule": "cosine", "weight_decay": 0.0},
        "train": {"steps": 4000, "batch_size": 40, "eval_every": 200, "eval_size": 400,
                  "checkpoint_every": 50, "seed": 0, "keep_best": False, "ema_decay": 0.0,
                  "eval_draws": 16},
    }  # fmt: skip
    from pathlib import Path

    shipped = load_config(Path(__file__).parents[1] / "configs" / "mnist-hh-long.toml")
    assert config_from_dict(upgrade_legacy(legacy)) == shipped


def test_every_task_implements_the_task_interface():
    """A contract over every task a config can name: built from its section, it is an
    AbstractTask whose methods return what the loop needs."""
    import inspect

    import jax

    from weakgrad.tasks.base import AbstractTask
    from weakgrad.tasks.spike_train_task import _loss

    # The sizes of the training tests above (SMALL, the spike-train test): the compiled
    # functions are shared within a pytest process.
    small = {
        # test_size = eval_size: scoring reuses the validation's compiled chunk
        "mnist": SMALL[:2] + ["train.batch_size=5", "train.eval_size=20", "train.test_size=20"],
        "spike-train": ["task.cells=3", "task.hidden=5", "task.duration_ms=30", "task.rate_hz=60"],
        "yinyang": [
            "task.hidden=6",
            "task.max_events=64",
            "train.batch_size=4",
            "train.eval_size=20",
            "train.test_size=20",
            "task.train_size=40",
        ],  # fmt: skip
        "latency-mnist": [
            "task.hidden=6",
            "task.max_events=64",
            "task.duration_ms=12",
            "train.batch_size=4",
            "train.eval_size=20",
            "train.test_size=20",
            "task.train_size=40",
        ],  # fmt: skip
    }
    assert set(small) == set(_sections("task"))
    key = jax.random.key(0)
    for name, over in small.items():
        cfg = load_config(None, [f"task.name={name}", *over])
        task = cfg.task.build(cfg)
        # Abstract or final: the task's class is concrete, every class between it and
        # AbstractTask abstract (AbstractSpikeTimeTask under yinyang and latency-mnist).
        assert isinstance(task, AbstractTask) and not inspect.isabstract(type(task))
        mro = type(task).__mro__
        assert all(inspect.isabstract(c) for c in mro[1 : mro.index(AbstractTask)])
        params = task.initial_params()
        assert len(params) == cfg.task.n_layers
        obj = task.objective_at(3)
        assert np.isfinite(float(_loss(obj, params, key)))  # _loss: jitted obj(params, key)
        loss, acc = task.validate(params, key)
        assert isinstance(loss, float) and isinstance(acc, float) and np.isfinite(loss)
        assert np.isnan(acc) or 0 <= acc <= 1
        scores = task.score(params, key)
        assert isinstance(scores, dict) and scores and json.dumps(scores)
        figures = task.figures(params, key)
        assert isinstance(figures, dict) and all(k.endswith(".png") for k in figures)
        import matplotlib.pyplot as plt

        for fig in figures.values():
            plt.close(fig)


def test_integers_beyond_64_bits_are_refused_naming_the_key():
    from weakgrad.config import config_from_dict

    with pytest.raises(ConfigError, match=r"train.steps = 99999999999999999999 is out of range"):
        config_from_dict({"train": {"steps": 99999999999999999999}})
    assert config_from_dict({"train": {"seed": 2**40}}).train.seed == 2**40  # large seeds: fine


def test_mnist_hidden_size_from_the_config():
    cfg = load_config(None, ["task.model=ann", "task.hidden=7", "task.train_size=20"])
    task = cfg.task.build(cfg)
    w1, w2 = (layer["weight"] for layer in task.initial_params())
    assert w1.shape == (784, 7) and w2.shape == (7, 10)
    assert load_config(None, ["task.model=ann"]).task.hidden == 100  # the study's size
    with pytest.raises(ConfigError, match=r"task.hidden.*must be > 0"):
        load_config(None, ["task.hidden=0"])


def test_test_size_scores_the_first_test_examples():
    import jax

    cfg = load_config(None, [*SMALL, "train.test_size=30"])
    task = cfg.task.build(cfg)
    assert task.score(task.initial_params(), jax.random.key(0))["test_size"] == 30
    with pytest.raises(ConfigError, match=r"train.test_size = 1001 exceeds the 1000 test"):
        cfg = load_config(None, ["train.test_size=1001"])
        cfg.task.build(cfg)
    with pytest.raises(ConfigError, match=r"train.test_size applies to the mnist task only"):
        load_config(None, ["task.name=spike-train", "train.test_size=10"])
