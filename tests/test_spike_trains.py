"""Spike-train replication pieces: synthetic trains, NWB round trip, spike-train losses,
and a spike-train objective trained by a weak gradient."""

from __future__ import annotations

from datetime import UTC

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.errors import ConfigError
from weakgrad.estimators import Alternate, Regression
from weakgrad.tasks.spike_trains import (
    CrossCorrelation,
    VanRossum,
    correlation_vs_lag,
    read_nwb_units,
    spike_train_objective,
    synthetic_spike_trains,
)


def test_synthetic_rates_and_correlation():
    dt = 0.1
    trains = np.asarray(
        synthetic_spike_trains(jax.random.key(0), n_cells=4, duration_ms=200_000.0, dt_ms=dt,
                               rates_hz=jnp.array([20.0, 20.0, 20.0, 10.0]), correlation=0.5)
    )  # fmt: skip
    rates = trains.sum(0) / 200.0
    np.testing.assert_allclose(rates, [20, 20, 20, 10], rtol=0.08)
    shared = np.sum(trains[:, 1] * trains[:, 2]) / trains[:, 1].sum()
    assert shared == pytest.approx(0.5, abs=0.05)  # equal rates share `correlation`
    assert np.sum(trains[:, 0] * trains[:, 3]) / trains[:, 0].sum() == pytest.approx(0.25, abs=0.05)
    indep = np.asarray(synthetic_spike_trains(jax.random.key(0), n_cells=2, duration_ms=200_000.0,
                                              dt_ms=dt, rates_hz=20.0))  # fmt: skip
    assert np.sum(indep[:, 0] * indep[:, 1]) / indep[:, 0].sum() < 0.01
    with pytest.raises(ValueError, match="correlation must be in"):
        synthetic_spike_trains(jax.random.key(0), correlation=1.5)


def test_nwb_round_trip(tmp_path):
    from datetime import datetime

    from pynwb import NWBHDF5IO, NWBFile

    times = [np.array([0.0012, 0.0105, 0.0301]), np.array([0.02]), np.array([])]
    nwb = NWBFile(session_description="weakgrad test", identifier="wg-1",
                  session_start_time=datetime(2026, 1, 1, tzinfo=UTC))  # fmt: skip
    for t in times:
        nwb.add_unit(spike_times=t)
    path = tmp_path / "units.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    trains = read_nwb_units(path, dt_ms=0.1, duration_ms=40.0)
    assert trains.shape == (400, 3)
    assert list(np.flatnonzero(trains[:, 0])) == [12, 105, 301]
    assert list(np.flatnonzero(trains[:, 1])) == [200] and trains[:, 2].sum() == 0
    assert read_nwb_units(path, dt_ms=1.0, units=[1]).shape == (21, 1)
    with pytest.raises(FileNotFoundError, match="NWB file .* does not exist"):
        read_nwb_units(tmp_path / "none.nwb", dt_ms=0.1)
    with pytest.raises(ConfigError, match=r"has 3 units \(rows 0-2\); units \[5\] do not"):
        read_nwb_units(path, dt_ms=1.0, units=[5])


def test_a_corrupt_nwb_file_is_a_config_error_naming_it(tmp_path):
    """A truncated NWB file, a file that is not HDF5 and an HDF5 file that is not NWB: one
    ConfigError naming the file (exit 2 on the CLI), not h5py's traceback."""
    import h5py

    garbage = tmp_path / "garbage.nwb"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))  # an HDF5 signature, then zeros
    plain = tmp_path / "plain.nwb"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    for path in (garbage, plain):
        with pytest.raises(ConfigError) as err:
            read_nwb_units(path, dt_ms=0.1)
        message = str(err.value)
        assert f"NWB file {path} cannot be read as NWB" in message, message
        assert "corrupt, truncated or not an NWB (HDF5) file" in message


def test_spike_train_losses():
    dt = 0.1
    a = np.zeros((2000, 2), np.float32)
    a[[100, 900], 0] = 1
    a[[500], 1] = 1
    a = jnp.asarray(a)
    vr, cc = VanRossum(tau_ms=10.0, dt_ms=dt), CrossCorrelation(tau_ms=10.0, dt_ms=dt)
    assert float(vr(a, a)) == pytest.approx(0.0, abs=1e-4)
    assert float(cc(a, a)) == pytest.approx(0.0, abs=1e-5)
    # One extra far-away spike in cell 1: van Rossum distance sqrt(1/2) for that cell.
    b = a.at[1500, 1].set(1.0)
    expected = np.sqrt(0.5 * (1 - np.exp(-2 * (2000 - 1500) * dt / 10)))
    assert float(vr(b, a)) == pytest.approx(expected / 2, rel=0.02)
    # Shifting spikes costs more the further they move.
    near, far = jnp.roll(a, 5, axis=0), jnp.roll(a, 50, axis=0)
    assert float(vr(near, a)) < float(vr(far, a))
    assert float(cc(near, a)) < float(cc(far, a))


def test_lagged_cross_correlation_matches_a_delayed_copy():
    """The study's loss integral y(t) y*(t + lag): a target that repeats the output 5 ms
    later is a match at lag 5 ms (loss 0 on the overlap), not at lag 0; a lag is not
    symmetric (the copy leads instead of lags at -5 ms)."""
    dt = 0.1
    k1 = jax.random.key(3)
    out = (jax.random.uniform(k1, (2000, 2)) < 0.01).astype(jnp.float32)
    target = jnp.roll(out, 50, axis=0).at[:50].set(0.0)  # 5 ms later
    lagged = CrossCorrelation(tau_ms=2.0, dt_ms=dt, lag_ms=5.0)
    zero = CrossCorrelation(tau_ms=2.0, dt_ms=dt)
    assert float(lagged(out, target)) == pytest.approx(0.0, abs=1e-5)
    assert float(zero(out, target)) > 0.5
    assert float(CrossCorrelation(2.0, dt, lag_ms=-5.0)(out, target)) > 0.5
    lags = np.arange(-10.0, 10.5, 0.5)
    curve = correlation_vs_lag(out, target, dt_ms=dt, tau_ms=2.0, lags_ms=lags)
    assert lags[np.argmax(curve)] == 5.0 and curve.max() == pytest.approx(1.0, abs=1e-5)
    # Lag 0 reproduces the zero-lag form exactly (same numbers as before the option).
    assert float(CrossCorrelation(2.0, dt, lag_ms=0.0)(out, target)) == float(zero(out, target))
    with pytest.raises(ValueError, match=r"lag_ms = 300.0 is 3000 steps"):
        CrossCorrelation(2.0, dt, lag_ms=300.0)(out, target)


def test_regression_reduces_the_replication_loss():
    dt = 0.1
    target = synthetic_spike_trains(
        jax.random.key(1), n_cells=3, duration_ms=60.0, dt_ms=dt, rates_hz=60.0
    )
    net = wg.Network.feedforward(
        (3, 6, 3), wg.HodgkinHuxley(), key=jax.random.key(2), scale=20.0, bias=5.0
    )
    obj = spike_train_objective(net, 60.0 * target, target, VanRossum(5.0), dt=dt)
    est = Alternate(Regression(sigma=0.5, samples=40))
    import optax

    opt = optax.adam(0.3)
    p = obj.params()
    state, opt_state = est.init(p), opt.init(p)

    @jax.jit
    def step(p, state, opt_state, k):
        g, state, info = est.estimate(obj, p, state, key=k)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes floats and int32 counts
            upd, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(p, upd), state, opt_state, info.loss

    start = float(obj(p, jax.random.key(0)))
    from weakgrad.plots import plot_raster

    out, _ = obj.readout(p, jax.random.key(0))
    fig = plot_raster(np.asarray(target), np.asarray(out[0]), dt)
    assert len(fig.axes[0].collections) == 2 * 3
    for i in range(30):
        p, state, opt_state, _ = step(p, state, opt_state, jax.random.key(i))
    assert np.isfinite(start) and float(obj(p, jax.random.key(0))) < 0.9 * start


def _lif_spike_train_objective():
    """A 3-8-2 LIF network fed Poisson trains, asked to reproduce two trains."""
    dt = 0.5
    k_in, k_target, k_net = jax.random.split(jax.random.key(3), 3)
    inputs = synthetic_spike_trains(k_in, n_cells=3, duration_ms=40.0, dt_ms=dt, rates_hz=150.0)
    target = synthetic_spike_trains(k_target, n_cells=2, duration_ms=40.0, dt_ms=dt, rates_hz=80.0)
    net = wg.Network.feedforward((3, 8, 2), wg.LIF(), key=k_net, scale=3.0, bias=2.0)
    return spike_train_objective(net, 10.0 * inputs, target, VanRossum(5.0), dt=dt)


def test_spike_train_losses_need_their_time_step():
    a = jnp.zeros((10, 2))
    with pytest.raises(ValueError, match=r"VanRossum.dt_ms is None"):
        VanRossum(5.0)(a, a)
    with pytest.raises(ValueError, match=r"differs from dt"):
        spike_train_objective(
            wg.Network.feedforward((2, 2), wg.LIF(), key=jax.random.key(0)), a, a,
            VanRossum(5.0, dt_ms=0.2), dt=0.1,
        )  # fmt: skip


def test_surrogate_gradients_train_on_the_spike_train_task():
    """The spike-train objective is a network objective: surrogate-gradient BPTT gives a
    non-zero gradient through the spikes, and a few of its steps lower the loss."""
    from weakgrad.estimators import Autodiff, SurrogateGradient
    from weakgrad.sim.surrogates import SuperSpike

    obj = _lif_spike_train_objective()
    p, key = obj.params(), jax.random.key(0)
    exact, _, _ = Autodiff().estimate(obj, p, (), key=key)
    assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(exact))  # spikes: flat
    est = SurrogateGradient(SuperSpike(beta=1.0))
    step = jax.jit(lambda p: est.estimate(obj, p, (), key=key)[0])
    g = step(p)
    assert np.any(np.asarray(g[0]["weight"])) and np.any(np.asarray(g[1]["weight"]))
    start = float(obj(p, key))
    for _ in range(20):
        g = step(p)
        p = jax.tree.map(lambda a, b: a - 0.05 * b, p, g)
    assert float(obj(p, key)) < start


def test_node_perturbation_agrees_with_weight_perturbation_on_the_spike_train_task():
    """Node perturbation runs on the spike-train objective; on the output layer its
    estimate points the same way as a large-sample regression estimate of the same
    (noise-smoothed) loss."""
    from weakgrad.estimators import Masked, NodePerturbation, Regression

    obj = _lif_spike_train_objective()
    p, key = obj.params(), jax.random.key(1)
    node = NodePerturbation(sigma=0.3, samples=256, layers=(1,))
    g_node = jax.jit(lambda p: node.estimate(obj, p, (), key=key)[0])(p)
    assert not np.any(np.asarray(g_node[0]["weight"]))  # only the output layer perturbed
    mask = ({"weight": False, "bias": False}, {"weight": True, "bias": True})
    reg = Masked(Regression(sigma=0.1, samples=512), mask)
    g_reg = jax.jit(lambda p: reg.estimate(obj, p, (), key=jax.random.key(2))[0])(p)
    a = np.concatenate([np.ravel(g_node[1][k]) for k in ("weight", "bias")])
    b = np.concatenate([np.ravel(g_reg[1][k]) for k in ("weight", "bias")])
    assert np.all(np.isfinite(a)) and np.any(a)
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.3
