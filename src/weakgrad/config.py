"""Training configurations: TOML files validated into frozen dataclasses.

A config has four sections, ``[task]``, ``[estimator]``, ``[optimizer]`` and ``[train]``;
every key has a default, so a file lists only what it changes. ``--set section.key=value``
overrides a key from the command line (values parsed as TOML literals: ``0.1``, ``true``,
``"adam"``). Unknown sections or keys, wrong types and values outside the allowed set raise
:class:`ConfigError` naming the field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "TaskConfig", "EstimatorConfig", "OptimizerConfig", "TrainLoopConfig",
           "TrainConfig", "config_from_dict", "load_config", "parse_overrides"]  # fmt: skip


from weakgrad.errors import ConfigError  # noqa: E402  (re-exported: config errors live there)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    name: str = "mnist"
    model: str = "ann"
    duration_ms: float = 10.0
    dt_ms: float = 0.05
    init: str = "gaussian"
    data_dir: str = ""
    train_size: int = 0  # 0: all training digits
    # Translate each training digit by a random whole number of pixels in [-shift_px,
    # shift_px] per axis, fresh every step (0: none). Validation and test digits are not moved.
    shift_px: int = 0
    readout: str = "voltage"  # HH: mean membrane potential or mean graded release
    readout_scale: float = 0.0  # HH logits per mV (voltage) or per release; 0 = default
    # spike-train replication (study 001): cells x hidden x hidden x cells HH network
    cells: int = 10
    hidden: int = 30
    rate_hz: float = 20.0
    correlation: float = 0.0
    input_gain: float = 10.0  # uA/cm^2 per input spike (held for one step)
    loss: str = "van-rossum"
    tau_ms: float = 10.0  # spike-train loss filter
    nwb_file: str = ""  # targets from an NWB units table instead of synthetic trains


@dataclasses.dataclass(frozen=True)
class EstimatorConfig:
    name: str = "regression"
    samples: int = 100
    sigma: float = 0.01
    alternate: bool = True
    antithetic: bool = False
    clip: float = 0.0  # autodiff: global-norm clip, 0 = none
    hold_ms: float = 0.0  # node: ms each noise draw is held; 0 = every step, inf = whole run
    # node: one sigma per layer (empty: sigma for all). A spiking hidden layer's release
    # moves with its drive only near threshold, so it needs a wider noise than the output.
    layer_sigma: tuple[float, ...] = ()
    # node with alternate: perturbed runs per digit for each layer (empty: samples for all).
    # A hidden layer of 100 neurons needs more draws than an output layer of 10.
    layer_samples: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    name: str = "adam"
    learning_rate: float = 0.01
    # One multiplier of the optimiser's update per layer (empty: all 1). HH layers need
    # them: a layer's drive moves by (update) x (sum of its input), and the hidden layer's
    # summed release (~3) is ~30x smaller than a digit's summed pixels (~100).
    layer_scale: tuple[float, ...] = ()
    schedule: str = "constant"  # or "cosine": decay to 0 over train.steps
    # Decoupled decay of the weights (not biases) per step, times the learning rate: lr*wd*W.
    weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class TrainLoopConfig:
    steps: int = 200
    batch_size: int = 10
    eval_every: int = 50
    eval_size: int = 400
    checkpoint_every: int = 50
    seed: int = 0
    # Also keep the parameters of the best evaluation (best.npz: highest validation accuracy,
    # ties and tasks without one by lowest validation loss) and report the test accuracy of
    # those as well as of the last step: early stopping by validation.
    keep_best: bool = False
    # Evaluate (validate, test, best.npz) an exponential moving average of the parameters
    # with this decay per step, bias-corrected (0: the parameters themselves). It averages
    # out the jitter a noisy gradient estimate leaves in the last iterates (Polyak 1992).
    ema_decay: float = 0.0
    # Predict (validate, test) with the class probabilities averaged over this many draws of
    # the node-perturbation noise the network trains with (estimator.layer_sigma / sigma,
    # hold_ms): node perturbation follows the gradient of the loss averaged over that
    # noise, so this is the network it trains. 0: the noise-free network.
    eval_draws: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    task: TaskConfig = TaskConfig()
    estimator: EstimatorConfig = EstimatorConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainLoopConfig = TrainLoopConfig()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


ALLOWED = {
    ("task", "name"): ("mnist", "spike-train"),
    ("task", "loss"): ("van-rossum", "cross-correlation"),
    ("task", "model"): ("linear", "ann", "hh"),
    ("task", "init"): ("gaussian", "orthogonal"),
    ("task", "readout"): ("voltage", "release"),
    ("estimator", "name"): (
        "regression",
        "smoothing",
        "spsa",
        "node",
        "node-stepwise",
        "autodiff",
    ),  # fmt: skip
    ("optimizer", "name"): ("adam", "sgd"),
    ("optimizer", "schedule"): ("constant", "cosine"),
}
POSITIVE = {
    ("task", "duration_ms"), ("task", "dt_ms"), ("estimator", "samples"),
    ("task", "cells"), ("task", "hidden"), ("task", "rate_hz"), ("task", "tau_ms"),
    ("estimator", "sigma"), ("optimizer", "learning_rate"), ("train", "steps"),
    ("train", "batch_size"), ("train", "eval_every"), ("train", "eval_size"),
    ("train", "checkpoint_every"),
}  # fmt: skip
NON_NEGATIVE = {
    ("task", "train_size"), ("task", "readout_scale"), ("estimator", "clip"),
    ("estimator", "hold_ms"), ("train", "seed"), ("task", "input_gain"),
    ("optimizer", "weight_decay"), ("task", "shift_px"),
    ("train", "ema_decay"), ("train", "eval_draws"),
}  # fmt: skip
_SECTIONS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
_CLASSES = {"task": TaskConfig, "estimator": EstimatorConfig, "optimizer": OptimizerConfig,
            "train": TrainLoopConfig}  # fmt: skip


def _check_value(section: str, key: str, value: Any, expected: type) -> Any:
    name = f"{section}.{key}"
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (
        expected is bool
        and not isinstance(value, bool)
        or (expected is not bool and (isinstance(value, bool) or not isinstance(value, expected)))
    ):
        raise ConfigError(
            f"{name} = {value!r} has type {type(value).__name__}; it must be a "
            f"{expected.__name__} (e.g. {getattr(_CLASSES[section](), key)!r})."
        )
    allowed = ALLOWED.get((section, key))
    if allowed is not None and value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not allowed; choose one of {', '.join(allowed)}.")
    if (section, key) in POSITIVE and not value > 0:
        raise ConfigError(f"{name} = {value!r} must be > 0.")
    if (section, key) in NON_NEGATIVE and value < 0:
        raise ConfigError(f"{name} = {value!r} must be >= 0.")
    return value


# Per-layer lists: element type, the smallest allowed value, what to call them, an example.
_PER_LAYER = {
    "tuple[float, ...]": (float, 0.0, "positive numbers", "[1.0, 30.0]"),
    "tuple[int, ...]": (int, 1, "whole numbers >= 2", "[12, 4]"),
}


def _check_per_layer(section: str, key: str, value: Any, kind: str) -> tuple[Any, ...]:
    cast, above, what, example = _PER_LAYER[kind]
    types = (int, float) if cast is float else (int,)
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, types) and not isinstance(v, bool) and v > above for v in value
    )
    if not ok:
        raise ConfigError(
            f"{section}.{key} = {value!r} must be a list of {what}, one per layer "
            f"(e.g. {example}), or [] for none."
        )
    return tuple(cast(v) for v in value)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested dict (as read from TOML or a run's config.json) into a config."""
    sections = {}
    for section, values in data.items():
        if section not in _CLASSES:
            raise ConfigError(
                f"unknown section [{section}]; the sections are {', '.join(_CLASSES)}."
            )
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table of keys, got {values!r}.")
        cls = _CLASSES[section]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"unknown key {section}.{key}; the keys of [{section}] are {', '.join(fields)}."
                )
            if fields[key].type in _PER_LAYER:
                kwargs[key] = _check_per_layer(section, key, value, fields[key].type)
                continue
            expected = {"str": str, "int": int, "float": float, "bool": bool}[fields[key].type]
            kwargs[key] = _check_value(section, key, value, expected)
        sections[section] = cls(**kwargs)
    cfg = TrainConfig(**sections)
    if not 0 <= cfg.task.correlation <= 1:
        raise ConfigError(f"task.correlation = {cfg.task.correlation} must be in [0, 1].")
    # Autodiff ignores every noise setting (samples, sigma and these alike), so that a node
    # config runs as the autodiff baseline with --set estimator.name=autodiff alone.
    noisy = cfg.estimator.name != "autodiff"
    if noisy and cfg.estimator.layer_sigma and cfg.estimator.name != "node":
        raise ConfigError(
            f"estimator.layer_sigma = {list(cfg.estimator.layer_sigma)} applies to "
            f'estimator.name = "node" only, not {cfg.estimator.name!r}; use [] (sigma).'
        )
    if (
        noisy
        and cfg.estimator.layer_samples
        and not (cfg.estimator.name == "node" and cfg.estimator.alternate)
    ):
        raise ConfigError(
            f"estimator.layer_samples = {list(cfg.estimator.layer_samples)} needs "
            'estimator.name = "node" with alternate = true (one layer per step); use [] '
            "(samples)."
        )
    if (
        noisy
        and cfg.train.eval_draws
        and not (
            cfg.task.name == "mnist" and cfg.task.model == "hh" and cfg.estimator.name == "node"
        )
    ):
        raise ConfigError(
            f"train.eval_draws = {cfg.train.eval_draws} averages predictions over the noise "
            'of estimator.name = "node" on an MNIST HH network (task.model = "hh"), got '
            f"estimator.name = {cfg.estimator.name!r}, task.model = {cfg.task.model!r}; use 0."
        )
    if not cfg.train.ema_decay < 1:
        raise ConfigError(
            f"train.ema_decay = {cfg.train.ema_decay} must be in [0, 1) (0.999 averages over "
            "~1,000 steps; 0 turns the average off)."
        )
    if cfg.task.shift_px > 13:
        raise ConfigError(
            f"task.shift_px = {cfg.task.shift_px} would move digits off the 28 x 28 image; "
            "use 0-13 (1 or 2 is usual)."
        )
    if cfg.task.dt_ms > cfg.task.duration_ms:
        raise ConfigError(
            f"task.dt_ms = {cfg.task.dt_ms} is longer than task.duration_ms = "
            f"{cfg.task.duration_ms}; make the duration at least one step."
        )
    return cfg


def parse_overrides(overrides: list[str]) -> dict[str, dict[str, Any]]:
    """``["estimator.samples=50", ...]`` -> nested dict, values parsed as TOML literals."""
    out: dict[str, dict[str, Any]] = {}
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(
                f"--set {item!r} must look like section.key=value, e.g. train.steps=100."
            )
        path, raw = item.split("=", 1)
        section, key = path.strip().split(".", 1)
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word: a string
        out.setdefault(section, {})[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a TOML config (None: all defaults), apply ``--set`` overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist.")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}.") from None
    for section, values in parse_overrides(overrides or []).items():
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table of keys.")
        data[section].update(values)
    return config_from_dict(data)
