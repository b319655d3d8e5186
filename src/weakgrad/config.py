"""Training configurations: TOML files validated into frozen sections that build objects.

A config has four sections, ``[task]``, ``[estimator]``, ``[optimizer]`` and ``[train]``;
every key has a default, so a file lists only what it changes. ``[task]`` and
``[estimator]`` are tagged: their ``name`` picks a section class from
:mod:`weakgrad.registry`, and each class takes only its own keys::

    [task]
    name = "mnist"            # mnist | spike-train | yinyang | latency-mnist
    model = "hh"
    duration_ms = 30.0

    [estimator]
    name = "node"             # regression | smoothing | spsa | node | node-stepwise | autodiff
                              # | surrogate | eventprop | mollified | fd
    sigma = 1.0
    layer_sigma = [6.0, 1.0]
    hold = "run"              # "step" (default) | "run"; or hold_ms = 5.0

A key that does not apply (``clip`` of a regression, ``cells`` of an MNIST task,
``duration_ms`` of a sigmoid network) is a :class:`ConfigError` naming the key and the
sections that take it; unknown sections or keys, wrong types and values outside the allowed
set raise one too, naming ``section.key``, the bad value and the fix. Optional values have
no sentinel numbers: leave the key out (None in Python).

``--set section.key=value`` overrides a key from the command line (values parsed as TOML
literals: ``0.1``, ``true``, ``"adam"``); ``--set 'section={...}'`` (a TOML inline table)
replaces a whole section, e.g. ``--set 'estimator={name="autodiff"}'`` runs a config as its
autodiff baseline.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from weakgrad import registry
from weakgrad.errors import ConfigError

__all__ = [
    "ConfigError",
    "Section",
    "EstimatorSection",
    "RegressionSection",
    "SmoothingSection",
    "SPSASection",
    "NodeSection",
    "StepwiseNodeSection",
    "AutodiffSection",
    "TaskSection",
    "MnistTaskConfig",
    "SpikeTrainTaskConfig",
    "YinYangTaskConfig",
    "LatencyMnistTaskConfig",
    "EventPropSection",
    "SurrogateSection",
    "OptimizerConfig",
    "TrainLoopConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
    "load_run_config",
    "parse_overrides",
    "read_run_config",
    "run_config_from_file",
    "upgrade_legacy",
]

SWITCH_HINT = "--set 'estimator={name=\"autodiff\"}'"


# --- value checks -------------------------------------------------------------------------


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def _choice(names: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in names else f"is not allowed; choose one of {', '.join(names)}"

    return check


def _field(default: Any = None, check: Callable[[Any], str | None] | None = None) -> Any:
    return dataclasses.field(default=default, metadata={"check": check})


_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}
# Per-layer lists: element type, the smallest allowed value (exclusive), what, an example.
_PER_LAYER = {
    "tuple[float, ...] | None": (float, 0.0, "positive finite numbers", "[1.0, 30.0]"),
    "tuple[int, ...] | None": (int, 1, "whole numbers >= 2", "[12, 4]"),
}


def _convert(where: str, value: Any, kind: str, example: Any) -> Any:
    """``value`` as the field's type ``kind`` (an annotation string), or a ConfigError."""
    if kind in _PER_LAYER:
        cast, above, what, ex = _PER_LAYER[kind]
        types = (int, float) if cast is float else (int,)
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, types) and not isinstance(v, bool) and math.isfinite(v) and v > above
            for v in value
        )
        if not ok or not value:
            raise ConfigError(
                f"{where} = {value!r} must be a list of {what}, one per layer (e.g. {ex}); "
                "leave the key out for none."
            )
        return tuple(cast(v) for v in value)
    expected = _SCALARS[kind.removesuffix(" | None")]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        raise ConfigError(
            f"{where} = {value!r} has type {type(value).__name__}; it must be a "
            f"{expected.__name__} (e.g. {example!r})."
        )
    if expected is float and not math.isfinite(value):
        hint = ' (hold = "run" holds each draw for the whole run)' if "hold_ms" in where else ""
        raise ConfigError(f"{where} = {value!r} must be a finite number{hint}.")
    if expected is int and not -(2**63) <= value < 2**63:
        # TOML's integers are 64-bit; Python's would carry a larger one into NumPy and JAX,
        # which overflow on it.
        raise ConfigError(f"{where} = {value!r} is out of range; use a whole number below 2**63.")
    return value


_EXAMPLES = {"str": "text", "int": 1, "float": 1.0, "bool": True}


# --- sections -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Section:
    """A config section: a frozen dataclass whose fields are its keys. ``from_dict``
    validates a table of keys (types, then each field's ``check``, then :meth:`_validate`);
    ``to_dict`` writes what ``from_dict`` reads back (None values left out)."""

    SECTION: ClassVar[str] = ""
    name: ClassVar[str] = ""  # tagged sections: the registry name that selects the class

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def _unknown(cls, key: str) -> ConfigError:
        return ConfigError(
            f"unknown key {cls.SECTION}.{key}; the keys of [{cls.SECTION}] are "
            f"{', '.join(cls.keys())}."
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Section:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key == "name" and "name" not in fields:
                continue  # a tagged section: the name picked this class
            if key not in fields:
                raise cls._unknown(key)
            f = fields[key]
            where = f"{cls.SECTION}.{key}"
            if value is None and "None" in f.type:
                kwargs[key] = None
                continue
            example = f.default if f.default is not None else _EXAMPLES.get(f.type.split()[0])
            value = _convert(where, value, f.type, example)
            check = f.metadata.get("check")
            problem = check(value) if check is not None and value is not None else None
            if problem:
                raise ConfigError(f"{where} = {value!r} {problem}.")
            kwargs[key] = value
        section = cls(**kwargs)
        section._validate()
        return section

    def _validate(self) -> None:
        """Checks across this section's fields (override)."""

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.fields(self)
        tagged = self.name and "name" not in [f.name for f in fields]
        out: dict[str, Any] = {"name": self.name} if tagged else {}
        for f in fields:
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def check_layers(self, n_layers: int) -> None:
        """Every per-layer list has one entry per layer of an ``n_layers`` network."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in _PER_LAYER and v is not None and len(v) != n_layers:
                raise ConfigError(
                    f"{self.SECTION}.{f.name} = {list(v)} has {len(v)} entries; this network "
                    f"has {n_layers} layers: give one per layer or leave the key out."
                )


# --- [estimator] --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EstimatorSection(Section, abc.ABC):
    """``[estimator]``: ``name`` picks the subclass; :meth:`build` makes the estimator."""

    SECTION: ClassVar[str] = "estimator"

    @abc.abstractmethod
    def build(self, *, dt_ms: float | None = None) -> Any:
        """The estimator (an ``AbstractEstimator``); ``dt_ms``: the task's time step, for
        estimators that count time in steps."""
        raise NotImplementedError

    def eval_noise(
        self, n_layers: int, dt_ms: float | None
    ) -> tuple[tuple[float, ...], int, int | None] | None:
        """(sigma per layer, draws, hold steps): the noise to average predictions over
        (node perturbation's ``eval_draws``); None: the noise-free network."""
        del n_layers, dt_ms
        return None

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        """The estimator at one point of the ``gradcheck`` grid: this section with
        ``samples`` and ``sigma`` (the perturbation size), one estimate of all compared
        parameters (no alternation). ``layers``: the layers node perturbation perturbs;
        ``dim``: the number of compared parameters (the mollifier's scale)."""
        del layers, dim
        return cls(samples=samples, sigma=sigma, alternate=False).build()

    @classmethod
    def _unknown(cls, key: str) -> ConfigError:
        takers = [n for n, c in registry.estimator_sections().items() if key in c.keys()]
        if takers:
            return ConfigError(
                f"estimator.{key} does not apply to estimator.name = {cls.name!r}; it is a key "
                f"of {', '.join(takers)}. Leave it out, or switch estimators by replacing the "
                f"section: --set 'estimator={{name=\"{cls.name}\", ...}}' (e.g. {SWITCH_HINT})."
            )
        return ConfigError(
            f"unknown key estimator.{key}; the keys of estimator {cls.name!r} are "
            f"{', '.join(cls.keys()) or '(none but name)'}."
        )


def _alternate(est: Any, alternate: bool) -> Any:
    from weakgrad.estimators import Alternate

    return Alternate(est) if alternate else est


@registry.register_estimator_section("regression")
@dataclasses.dataclass(frozen=True)
class RegressionSection(EstimatorSection):
    """Regression on random weight perturbations of std ``sigma`` (``samples`` of them, at
    least 2; with ``antithetic`` rounded up to pairs); ``alternate``: one layer per step."""

    name: ClassVar[str] = "regression"
    samples: int = _field(100, _positive)
    sigma: float = _field(0.01, _positive)
    alternate: bool = True
    antithetic: bool = False

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import Regression

        s = self.samples
        samples = s + s % 2 if self.antithetic else max(s, 2)
        est = Regression(sigma=self.sigma, samples=samples, antithetic=self.antithetic)
        return _alternate(est, self.alternate)


@registry.register_estimator_section("smoothing")
@dataclasses.dataclass(frozen=True)
class SmoothingSection(EstimatorSection):
    """Gaussian smoothing (antithetic pairs: ``samples`` rounded up to even)."""

    name: ClassVar[str] = "smoothing"
    samples: int = _field(100, _positive)
    sigma: float = _field(0.01, _positive)
    alternate: bool = True

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import GaussianSmoothing

        s = self.samples
        return _alternate(GaussianSmoothing(sigma=self.sigma, samples=max(2, s + s % 2)),
                          self.alternate)  # fmt: skip


@registry.register_estimator_section("spsa")
@dataclasses.dataclass(frozen=True)
class SPSASection(EstimatorSection):
    """SPSA with step ``sigma``: ``samples // 2`` (at least 1) pairs of evaluations."""

    name: ClassVar[str] = "spsa"
    samples: int = _field(100, _positive)
    sigma: float = _field(0.01, _positive)
    alternate: bool = True

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import SPSA

        return _alternate(SPSA(step=self.sigma, samples=max(1, self.samples // 2)),
                          self.alternate)  # fmt: skip


@registry.register_estimator_section("node")
@dataclasses.dataclass(frozen=True)
class NodeSection(EstimatorSection):
    """Node perturbation: noise of std ``sigma`` on each neuron's drive.

    - ``layer_sigma``: one std per layer instead (a spiking hidden layer's release moves
      with its drive only near threshold, so it needs a wider noise than the output).
    - ``samples`` perturbed runs per example (at least 2; with ``antithetic`` rounded up
      to pairs); ``layer_samples``: one count per layer, with ``alternate`` (one layer per
      step; a hidden layer of 100 neurons needs more draws than an output layer of 10).
    - How long each noise draw is held: ``hold = "step"`` (the default: fresh noise every
      time step, white noise), ``hold = "run"`` (one draw held for the whole run, a
      constant current) or ``hold_ms = 5.0`` (a fresh draw every 5 ms); give at most one.
    - ``eval_draws``: predict (validate, test) with the class probabilities averaged over
      this many draws of this noise (MNIST HH networks): node perturbation follows the
      gradient of the loss averaged over its noise, so this is the network it trains.
      Left out: the noise-free network.
    """

    name: ClassVar[str] = "node"
    samples: int = _field(100, _positive)
    sigma: float = _field(0.01, _positive)
    alternate: bool = True
    antithetic: bool = False
    layer_sigma: tuple[float, ...] | None = None
    layer_samples: tuple[int, ...] | None = None
    hold: str | None = _field(None, _choice(("step", "run")))
    hold_ms: float | None = _field(None, _positive)
    eval_draws: int | None = _field(None, _positive)

    def _validate(self) -> None:
        if self.hold is not None and self.hold_ms is not None:
            raise ConfigError(
                f"estimator.hold = {self.hold!r} and estimator.hold_ms = {self.hold_ms} both "
                'say how long noise is held; give one (hold = "step" | "run", or hold_ms).'
            )
        if self.layer_samples is not None and not self.alternate:
            raise ConfigError(
                f"estimator.layer_samples = {list(self.layer_samples)} needs "
                "estimator.alternate = true (one layer per step); leave it out to use samples."
            )

    def hold_steps(self, dt_ms: float | None) -> int | None:
        """Steps each draw is held (None: the whole run)."""
        if self.hold == "run":
            return None
        if self.hold_ms is None:
            return 1
        if dt_ms is None:
            raise ConfigError("estimator.hold_ms needs a task with a time step (task.dt_ms).")
        return max(1, int(round(self.hold_ms / dt_ms)))

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import NodePerturbation

        s, pairs = self.samples, self.antithetic
        samples: Any = s + s % 2 if pairs else max(s, 2)
        if self.layer_samples is not None:
            samples = tuple(c + c % 2 if pairs else c for c in self.layer_samples)
        est = NodePerturbation(
            sigma=self.layer_sigma or self.sigma, samples=samples,
            hold=self.hold_steps(dt_ms), antithetic=pairs,
        )  # fmt: skip
        return _alternate(est, self.alternate)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        est = cls(samples=samples, sigma=sigma, alternate=False).build()
        return dataclasses.replace(est, layers=layers)

    def eval_noise(
        self, n_layers: int, dt_ms: float | None
    ) -> tuple[tuple[float, ...], int, int | None] | None:
        if self.eval_draws is None:
            return None
        sigma = self.layer_sigma or (self.sigma,) * n_layers
        return tuple(sigma), self.eval_draws, self.hold_steps(dt_ms)


@registry.register_estimator_section("node-stepwise")
@dataclasses.dataclass(frozen=True)
class StepwiseNodeSection(EstimatorSection):
    """Node perturbation with one probe per time step (all layers, no alternation)."""

    name: ClassVar[str] = "node-stepwise"
    samples: int = _field(100, _positive)
    sigma: float = _field(0.01, _positive)

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import StepwiseNodePerturbation

        return StepwiseNodePerturbation(sigma=self.sigma, samples=self.samples)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        return dataclasses.replace(cls(samples=samples, sigma=sigma).build(), layers=layers)


@registry.register_estimator_section("autodiff")
@dataclasses.dataclass(frozen=True)
class AutodiffSection(EstimatorSection):
    """Backpropagation (through time); ``clip``: global-norm clip of the gradient (left
    out: none)."""

    name: ClassVar[str] = "autodiff"
    clip: float | None = _field(None, _positive)

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import Autodiff

        return Autodiff(clip=self.clip)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        return cls().build()  # the reference: samples and sigma do not apply


@registry.register_estimator_section("mollified")
@dataclasses.dataclass(frozen=True)
class MollifiedSection(EstimatorSection):
    """The gradient of the loss mollified by the study's bump of half-width ``width`` in
    parameter space, by Monte Carlo (``samples`` rounded up to pairs)."""

    name: ClassVar[str] = "mollified"
    samples: int = _field(100, _positive)
    width: float = _field(0.01, _positive)
    alternate: bool = True

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import MollifiedMonteCarlo

        s = self.samples
        est = MollifiedMonteCarlo(width=self.width, samples=max(2, s + s % 2))
        return _alternate(est, self.alternate)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        # A bump in dim dimensions concentrates near its radius: sigma is the per-coordinate
        # scale, so the half-width is sigma * sqrt(dim).
        return cls(samples=samples, width=sigma * dim**0.5, alternate=False).build()


@registry.register_estimator_section("fd")
@dataclasses.dataclass(frozen=True)
class CentralDifferenceSection(EstimatorSection):
    """Central finite differences of every parameter with step ``step`` (2 evaluations per
    parameter; ``alternate``: one layer per step)."""

    name: ClassVar[str] = "fd"
    step: float = _field(1e-3, _positive)
    alternate: bool = True

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import CentralDifference

        return _alternate(CentralDifference(step=self.step), self.alternate)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        return cls(step=sigma, alternate=False).build()


@registry.register_estimator_section("eventprop")
@dataclasses.dataclass(frozen=True)
class EventPropSection(EstimatorSection):
    """EventProp: exact gradients of an event-simulated LIF network (the yinyang and
    latency-mnist tasks); no keys."""

    name: ClassVar[str] = "eventprop"

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import EventProp

        return EventProp()

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        return cls().build()  # exact: samples and sigma do not apply


@registry.register_estimator_section("surrogate")
@dataclasses.dataclass(frozen=True)
class SurrogateSection(EstimatorSection):
    """Surrogate-gradient BPTT: ``surrogate`` (superspike | sigmoid) of slope ``beta`` (per
    unit of membrane potential) on every spiking neuron; ``clip``: global-norm clip (left
    out: none)."""

    name: ClassVar[str] = "surrogate"
    surrogate: str = _field("superspike", _choice(registry.SURROGATES))
    beta: float = _field(10.0, _positive)
    clip: float | None = _field(None, _positive)

    def build(self, *, dt_ms: float | None = None) -> Any:
        from weakgrad.estimators import SurrogateGradient
        from weakgrad.sim.surrogates import SigmoidSurrogate, SuperSpike

        cls = SuperSpike if self.surrogate == "superspike" else SigmoidSurrogate
        return SurrogateGradient(cls(beta=self.beta), clip=self.clip)

    @classmethod
    def for_grid(
        cls, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
    ) -> Any:
        return cls().build()


# --- [task] -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TaskSection(Section, abc.ABC):
    """``[task]``: ``name`` picks the subclass; :meth:`build` makes the task object."""

    SECTION: ClassVar[str] = "task"

    @property
    @abc.abstractmethod
    def n_layers(self) -> int:
        """Layers of the task's network."""

    @property
    @abc.abstractmethod
    def time_step(self) -> float | None:
        """The simulation step in ms (None: a network without time)."""

    @abc.abstractmethod
    def build(self, cfg: TrainConfig) -> Any:
        """The task object (a :class:`weakgrad.tasks.base.AbstractTask`)."""

    @classmethod
    def _unknown(cls, key: str) -> ConfigError:
        takers = [n for n, c in registry.task_sections().items() if key in c.keys()]
        if takers:
            return ConfigError(
                f"task.{key} does not apply to task.name = {cls.name!r}; it is a key of the "
                f"{', '.join(takers)} task. Leave it out."
            )
        return ConfigError(
            f"unknown key task.{key}; the keys of task {cls.name!r} are {', '.join(cls.keys())}."
        )


_HH_ONLY = ("duration_ms", "dt_ms", "readout", "readout_scale")


@registry.register_task_section("mnist")
@dataclasses.dataclass(frozen=True)
class MnistTaskConfig(TaskSection):
    """MNIST digits on a 784-``hidden``-10 network (``model``: linear | ann | hh; ``hidden``:
    the hidden layer's size, the study's 100).

    ``init`` (gaussian | orthogonal), ``init_gain`` (multiplies the weights' scale, e.g.
    0.8) and ``init_fold`` (fold each weight matrix k times: seed 004's degenerate
    initialisation; :mod:`weakgrad.sim.init`);
    ``data_dir``: a folder of IDX files (left out: the built-in 5,000 digits);
    ``train_size``: the first N training digits (left out: all); ``shift_px``: translate
    each training digit by a random whole number of pixels in [-shift_px, shift_px] per
    axis, fresh every step. HH networks only: ``duration_ms``, ``dt_ms``, ``readout``
    (voltage | release) and ``readout_scale`` (logits per mV or per release; left out:
    the readout's default).
    """

    name: ClassVar[str] = "mnist"
    model: str = _field("ann", _choice(registry.MNIST_MODELS))
    hidden: int = _field(100, _positive)
    init: str = _field("gaussian", _choice(registry.MNIST_INITS))
    init_gain: float = _field(1.0, _positive)
    init_fold: int = _field(0, _non_negative)
    data_dir: str | None = None
    train_size: int | None = _field(None, _positive)
    shift_px: int = _field(0, _non_negative)
    duration_ms: float = _field(10.0, _positive)
    dt_ms: float = _field(0.05, _positive)
    readout: str = _field("voltage", _choice(registry.HH_READOUTS))
    readout_scale: float | None = _field(None, _positive)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Section:
        model = values.get("model", "ann")
        if model != "hh":
            for key in _HH_ONLY:
                if key in values:
                    raise ConfigError(
                        f'task.{key} applies to HH networks only (task.model = "hh"), not '
                        f"task.model = {model!r}; leave it out."
                    )
        return super().from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.model != "hh":
            for key in _HH_ONLY:
                out.pop(key, None)
        return out

    def _validate(self) -> None:
        if self.shift_px > 13:
            raise ConfigError(
                f"task.shift_px = {self.shift_px} would move digits off the 28 x 28 image; "
                "use 0-13 (1 or 2 is usual)."
            )
        _check_duration(self.duration_ms, self.dt_ms)

    @property
    def n_layers(self) -> int:
        return 2

    @property
    def time_step(self) -> float | None:
        return self.dt_ms if self.model == "hh" else None

    def build(self, cfg: TrainConfig) -> Any:
        from weakgrad.tasks.mnist_task import MnistTask

        return MnistTask.from_config(cfg)


def _check_duration(duration_ms: float, dt_ms: float) -> None:
    if dt_ms > duration_ms:
        raise ConfigError(
            f"task.dt_ms = {dt_ms} is longer than task.duration_ms = {duration_ms}; make the "
            "duration at least one step."
        )


@registry.register_task_section("spike-train")
@dataclasses.dataclass(frozen=True)
class SpikeTrainTaskConfig(TaskSection):
    """Spike-train replication (study 001): a ``cells`` x ``hidden`` x ``hidden`` x
    ``cells`` HH network fed the target trains (``input_gain`` uA/cm^2 per input spike,
    held for one step) and trained to reproduce them under ``loss`` with filter
    ``tau_ms``. Targets: synthetic Poisson trains (``rate_hz``, pairwise ``correlation``)
    or the units table of an NWB file (``nwb_file``; then ``cells``, ``rate_hz`` and
    ``correlation`` do not apply)."""

    name: ClassVar[str] = "spike-train"
    cells: int = _field(10, _positive)
    hidden: int = _field(30, _positive)
    rate_hz: float = _field(20.0, _positive)
    correlation: float = _field(0.0, lambda v: None if 0 <= v <= 1 else "must be in [0, 1]")
    input_gain: float = _field(10.0, _non_negative)
    loss: str = _field("van-rossum", _choice(registry.SPIKE_LOSSES))
    tau_ms: float = _field(10.0, _positive)
    nwb_file: str | None = None
    duration_ms: float = _field(10.0, _positive)
    dt_ms: float = _field(0.05, _positive)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Section:
        if values.get("nwb_file") is not None:
            for key in ("cells", "rate_hz", "correlation"):
                if key in values:
                    raise ConfigError(
                        f"task.{key} applies to synthetic targets; with task.nwb_file the "
                        "targets come from the file. Leave it out."
                    )
        return super().from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.nwb_file is not None:
            for key in ("cells", "rate_hz", "correlation"):
                out.pop(key)
        return out

    def _validate(self) -> None:
        _check_duration(self.duration_ms, self.dt_ms)

    @property
    def n_layers(self) -> int:
        return 3

    @property
    def time_step(self) -> float | None:
        return self.dt_ms

    def build(self, cfg: TrainConfig) -> Any:
        from weakgrad.tasks.spike_train_task import SpikeTrainTask

        return SpikeTrainTask.from_config(cfg)


@dataclasses.dataclass(frozen=True)
class _EventLifSection(TaskSection, abc.ABC):
    """What the event-simulated LIF classification tasks (yinyang, latency-mnist) share:
    an input-hidden-output network, the checks across their keys, the surrogate twin's
    grid ``dt_ms``, and the keys below (same defaults in both); subclasses add their own
    (``hidden``, ``max_events`` and the initial weights' defaults differ)."""

    loss: str = _field("max-voltage", _choice(registry.YINYANG_LOSSES))
    recurrent: bool = False
    tau_mem_ms: float = _field(20.0, _positive)
    tau_syn_ms: float = _field(5.0, _positive)
    duration_ms: float = _field(30.0, _positive)
    dt_ms: float = _field(0.1, _positive)
    t_early_ms: float = _field(2.0, _non_negative)
    t_late_ms: float = _field(12.0, _positive)
    readout_scale: float = _field(2.0, _positive)
    train_size: int | None = _field(None, _positive)

    def _validate(self) -> None:
        _check_event_lif(self)

    @property
    def n_layers(self) -> int:
        return 2

    @property
    def time_step(self) -> float | None:
        return self.dt_ms


@registry.register_task_section("yinyang")
@dataclasses.dataclass(frozen=True)
class YinYangTaskConfig(_EventLifSection):
    """Yin-Yang (Kriener et al. 2022; 5,000 / 1,000 / 1,000 generated points) on a
    5-``hidden``-3 network of LIF neurons with exponential current synapses, simulated event
    by event (:mod:`weakgrad.sim.event_lif`; ``max_events`` spikes per example at most).

    ``loss``: max-voltage (non-spiking outputs; cross-entropy of ``readout_scale`` times
    each output's maximum potential) or first-spike (spiking outputs; time-to-first-spike
    cross-entropy). ``recurrent``: recurrent weights in the hidden layer. Time constants
    ``tau_mem_ms``, ``tau_syn_ms`` (unequal), window ``duration_ms``; ``dt_ms``: the grid of
    the surrogate-gradient twin. Inputs: x, y, 1 - x, 1 - y as spike times in
    [``t_early_ms``, ``t_late_ms``] and a bias spike at ``t_bias_ms``. Hidden weights start
    N(``init_mean``, ``init_std``^2). ``train_size``: the first N training points (left out:
    all). Batches: train.batch_size, validation: train.eval_size.
    """

    name: ClassVar[str] = "yinyang"
    hidden: int = _field(120, _positive)
    max_events: int = _field(512, _positive)
    t_bias_ms: float = _field(0.0, _non_negative)
    init_mean: float = 2.0
    init_std: float = _field(1.0, _non_negative)

    def build(self, cfg: TrainConfig) -> Any:
        from weakgrad.tasks.yinyang import YinYangTask

        return YinYangTask.from_config(cfg)


def _check_event_lif(t: _EventLifSection) -> None:
    """The checks across keys of an event-simulated LIF task (yinyang, latency-mnist)."""
    if abs(t.tau_mem_ms - t.tau_syn_ms) < 1e-6 * t.tau_mem_ms:
        raise ConfigError(
            f"task.tau_mem_ms = {t.tau_mem_ms} equals task.tau_syn_ms; the event-based "
            "solution needs them unequal (e.g. 20.0 and 5.0)."
        )
    if not t.t_early_ms < t.t_late_ms:
        raise ConfigError(
            f"task.t_early_ms = {t.t_early_ms} must be below task.t_late_ms = "
            f"{t.t_late_ms} (the input spike-time range)."
        )
    if t.dt_ms > t.duration_ms:
        raise ConfigError(
            f"task.dt_ms = {t.dt_ms} exceeds task.duration_ms = {t.duration_ms}; "
            "make the duration at least one step."
        )


@registry.register_task_section("latency-mnist")
@dataclasses.dataclass(frozen=True)
class LatencyMnistTaskConfig(_EventLifSection):
    """Latency-coded MNIST (:mod:`weakgrad.tasks.latency_mnist`) on a 784-``hidden``-10
    network of LIF neurons with exponential current synapses, simulated event by event
    (``max_events`` network spikes per example at most; an example with more is lost: NaN).

    Inputs: each pixel of intensity v >= ``pixel_threshold`` spikes once at ``t_early_ms +
    (1 - v) (t_late_ms - t_early_ms)``; dimmer pixels do not spike. ``data_dir``: a folder of
    IDX files, as for the mnist task (left out: the built-in 5,000 digits, or
    ``WEAKGRAD_DATA``); ``train_size``: the first N training digits (left out: all).
    ``loss``, ``recurrent``, ``tau_mem_ms``, ``tau_syn_ms``, ``duration_ms``, ``dt_ms``,
    ``readout_scale``: as for yinyang. Hidden weights start N(``init_mean``,
    ``init_std``^2), output weights N(``out_mean``, ``out_std``^2) (``out_mean`` left out: 0
    for max-voltage, 4 / sqrt(hidden) for first-spike). Batches: train.batch_size,
    validation: train.eval_size.
    """

    name: ClassVar[str] = "latency-mnist"
    hidden: int = _field(100, _positive)
    max_events: int = _field(1024, _positive)
    pixel_threshold: float = _field(
        0.2, lambda v: None if 0 <= v <= 1 else "must be in [0, 1] (a pixel intensity, e.g. 0.2)"
    )
    init_mean: float = 0.06
    init_std: float = _field(0.2, _non_negative)
    out_mean: float | None = None
    out_std: float = _field(0.4, _non_negative)
    data_dir: str | None = None

    def build(self, cfg: TrainConfig) -> Any:
        from weakgrad.tasks.latency_mnist import LatencyMnistTask

        return LatencyMnistTask.from_config(cfg)


# --- [optimizer], [train] -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OptimizerConfig(Section):
    """``name``: adam | sgd. ``layer_scale``: one multiplier of the update per layer (left
    out: all 1); HH layers need them: a layer's drive moves by (update) x (sum of its
    input), and the hidden layer's summed release (~3) is ~30x smaller than a digit's
    summed pixels (~100). ``schedule``: constant, or cosine decay to 0 over train.steps.
    ``weight_decay``: decoupled decay of the weights (not biases) per step, times the
    learning rate: lr * wd * W."""

    SECTION: ClassVar[str] = "optimizer"
    name: str = _field("adam", _choice(registry.OPTIMIZERS))  # type: ignore[assignment]
    learning_rate: float = _field(0.01, _positive)
    layer_scale: tuple[float, ...] | None = None
    schedule: str = _field("constant", _choice(registry.SCHEDULES))
    weight_decay: float = _field(0.0, _non_negative)

    def build(self, steps: int | None = None) -> Any:
        from weakgrad.training.optim import make_optimizer

        return make_optimizer(self, steps)


_MNIST_ONLY_TRAIN = ("batch_size", "eval_size", "test_size")
_BATCHED_TASKS = ("mnist", "yinyang", "latency-mnist")  # the tasks that take _MNIST_ONLY_TRAIN


@dataclasses.dataclass(frozen=True)
class TrainLoopConfig(Section):
    """The loop: ``steps``; ``batch_size`` digits per step, ``eval_size`` validation
    digits and ``test_size`` test digits scored at the end (left out: all; the batched tasks
    only: mnist, yinyang, latency-mnist); evaluation and checkpoints every ``eval_every`` and
    ``checkpoint_every`` steps; ``seed``.

    ``keep_best``: also keep the parameters of the best evaluation (best.npz: highest
    validation accuracy, ties and tasks without one by lowest validation loss) and report
    the test metrics of those: early stopping by validation. ``ema_decay``: evaluate an
    exponential moving average of the parameters with this decay per step, bias-corrected
    (0: the parameters themselves); it averages out the jitter a noisy gradient estimate
    leaves in the last iterates (Polyak 1992)."""

    SECTION: ClassVar[str] = "train"
    steps: int = _field(200, _positive)
    batch_size: int = _field(10, _positive)
    eval_every: int = _field(50, _positive)
    eval_size: int = _field(400, _positive)
    test_size: int | None = _field(None, _positive)
    checkpoint_every: int = _field(50, _positive)
    seed: int = _field(0, _non_negative)
    keep_best: bool = False
    ema_decay: float = _field(
        0.0,
        lambda v: (
            None
            if 0 <= v < 1
            else "must be in [0, 1) (0.999 averages over ~1,000 steps; 0 turns the average off)"
        ),
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    task: TaskSection = dataclasses.field(default_factory=MnistTaskConfig)
    estimator: EstimatorSection = dataclasses.field(default_factory=RegressionSection)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    train: TrainLoopConfig = dataclasses.field(default_factory=TrainLoopConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """What :func:`config_from_dict` reads back into an equal config (a run's
        config.json)."""
        out = {
            "task": self.task.to_dict(),
            "estimator": self.estimator.to_dict(),
            "optimizer": self.optimizer.to_dict(),
            "train": self.train.to_dict(),
        }
        if self.task.name not in _BATCHED_TASKS:
            for key in _MNIST_ONLY_TRAIN:
                out["train"].pop(key, None)
        return out


_PLAIN = {"optimizer": OptimizerConfig, "train": TrainLoopConfig}
SECTIONS = ("task", "estimator", "optimizer", "train")


def _tagged(section: str, values: dict[str, Any], table: Any, default: str) -> Section:
    name = values.get("name", default)
    if not isinstance(name, str) or name not in table:
        raise ConfigError(
            f"{section}.name = {name!r} is not allowed; choose one of {', '.join(table)}."
        )
    return table[name].from_dict(values)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested dict (as read from TOML or a run's config.json) into a config."""
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section [{section}]; the sections are {', '.join(SECTIONS)}."
            )
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table of keys, got {values!r}.")
    task = _tagged("task", data.get("task", {}), registry.task_sections(), "mnist")
    estimator = _tagged(
        "estimator", data.get("estimator", {}), registry.estimator_sections(), "regression"
    )
    optimizer = OptimizerConfig.from_dict(data.get("optimizer", {}))
    train_values = data.get("train", {})
    if task.name not in _BATCHED_TASKS:
        for key in _MNIST_ONLY_TRAIN:
            if key in train_values:
                raise ConfigError(
                    f"train.{key} applies to the mnist task only, and to "
                    f"{' and '.join(_BATCHED_TASKS[1:])} (task.name = {task.name!r} trains on "
                    "one set of trains); leave it out."
                )
    train = TrainLoopConfig.from_dict(train_values)
    cfg = TrainConfig(task, estimator, optimizer, train)  # type: ignore[arg-type]
    for section in (estimator, optimizer):
        section.check_layers(task.n_layers)
    if isinstance(estimator, NodeSection) and estimator.eval_draws is not None:
        if not (isinstance(task, MnistTaskConfig) and task.model == "hh"):
            raise ConfigError(
                f"estimator.eval_draws = {estimator.eval_draws} averages predictions over the "
                'noise of node perturbation on an MNIST HH network (task.model = "hh"), got '
                f"task {task.name!r}, model {getattr(task, 'model', None)!r}; leave it out."
            )
    if isinstance(estimator, NodeSection) and estimator.hold_ms is not None:
        if task.time_step is None:
            raise ConfigError(
                f"estimator.hold_ms = {estimator.hold_ms} needs a network simulated in time "
                '(task.model = "hh" or the spike-train task); leave it out.'
            )
    return cfg


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["estimator.samples=50", 'estimator={name="autodiff"}', ...]`` -> nested dict,
    values parsed as TOML literals. A whole section (``section={...}``) replaces the
    section; later items apply on top of earlier ones."""
    out: dict[str, Any] = {}
    for item in overrides:
        path, eq, raw = item.partition("=")
        path = path.strip()
        usage = (
            f"--set {item!r} must look like section.key=value, e.g. train.steps=100, or "
            f"section={{...}} (a TOML inline table replacing the section), e.g. "
            f"{SWITCH_HINT[6:]}."
        )
        if not eq or not path:
            raise ConfigError(usage)
        try:
            value = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()  # a bare word: a string
        if "." not in path:
            if not isinstance(value, dict):
                raise ConfigError(usage)
            out[path] = {"__replace__": True, **value}
            continue
        section, key = path.split(".", 1)
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
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"config file {path} is not UTF-8 text (byte {e.start}: {e.reason}); is it a "
                "TOML file? Configs are TOML text (see configs/*.toml)."
            ) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}.") from None
    return _apply(data, parse_overrides(overrides or []))


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A run's ``config.json`` as a dict in the current form (:func:`upgrade_legacy`);
    unreadable or invalid JSON is a :class:`ConfigError` naming the file."""
    import json

    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(
            f"{path} is not a run's JSON config ({e}); it is corrupt or was edited: restore "
            "it, or train again into a new --out."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a run's config (a JSON object of sections).")
    return upgrade_legacy(data)


def run_config_from_file(path: str | Path) -> TrainConfig:
    """:func:`read_run_config` validated; a problem names the file."""
    data = read_run_config(path)
    try:
        return config_from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def _apply(data: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    for section, values in overrides.items():
        if values.pop("__replace__", False):
            data[section] = values
            continue
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"[{section}] must be a table of keys.")
        data[section].update(values)
    return config_from_dict(data)


def load_run_config(
    path: str | Path | None,
    overrides: list[str],
    *,
    out: str | Path,
    resume: bool = False,
    default: list[str] | None = None,
) -> TrainConfig:
    """The config of ``weakgrad train``: the file ``path`` with ``overrides``; without a
    file, a resumed run's own ``out/config.json`` (overrides on top) or, for a new run, the
    defaults with the ``default`` overrides first."""
    saved = Path(out) / "config.json"
    if path is None and resume and saved.is_file():
        return _apply(read_run_config(saved), parse_overrides(overrides))
    if path is None and not resume:
        overrides = [*(default or []), *overrides]
    return load_config(path, overrides)


def upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """A run's ``config.json`` written before the sections were tagged (every key of every
    section, sentinel numbers) -> the current form; any other dict is returned as it is.
    Used where old run folders are read back (``evaluate``, ``--resume``)."""
    est = data.get("estimator", {})
    if not ("clip" in est and "layer_samples" in est and "hold_ms" in est):
        return data
    task = dict(data.get("task", {}))
    train = dict(data.get("train", {}))
    name = est.get("name", "regression")
    cls = registry.estimator_sections().get(name)
    if cls is None:
        return data  # config_from_dict names the problem
    new_est: dict[str, Any] = {"name": name}
    for key in cls.keys():
        if key in est and est[key] not in ([], 0, 0.0, ""):
            new_est[key] = est[key]
        elif key in ("alternate", "antithetic") and key in est:
            new_est[key] = est[key]
    if name == "node":
        hold_ms = est.get("hold_ms", 0.0)
        new_est.pop("hold_ms", None)
        if hold_ms == float("inf"):
            new_est["hold"] = "run"
        elif hold_ms:
            new_est["hold_ms"] = hold_ms
        if train.get("eval_draws"):
            new_est["eval_draws"] = train["eval_draws"]
    train.pop("eval_draws", None)
    new_task: dict[str, Any] = {"name": task.get("name", "mnist")}
    tcls = registry.task_sections().get(new_task["name"])
    if tcls is None:
        return data
    for key in tcls.keys():
        if (
            key in task
            and task[key] not in ("",)
            and not (key in ("train_size", "readout_scale") and task[key] == 0)
        ):
            new_task[key] = task[key]
    if new_task["name"] == "mnist":
        # The flat legacy dict's "hidden" was the spike-train task's; MNIST networks then
        # always had 100 hidden units (the default).
        new_task.pop("hidden", None)
    if new_task["name"] == "mnist" and new_task.get("model", "ann") != "hh":
        for key in _HH_ONLY:
            new_task.pop(key, None)
    if new_task.get("nwb_file"):
        for key in ("cells", "rate_hz", "correlation"):
            new_task.pop(key, None)
    if new_task["name"] not in _BATCHED_TASKS:
        for key in _MNIST_ONLY_TRAIN:
            train.pop(key, None)
    optimizer = dict(data.get("optimizer", {}))
    if optimizer.get("layer_scale") == []:
        optimizer.pop("layer_scale")
    return {"task": new_task, "estimator": new_est, "optimizer": optimizer, "train": train}
