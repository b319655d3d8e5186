"""Mollification of curves and traces, and gradient descent on sampled curves."""

from __future__ import annotations

import numpy as np
import pytest

from weakgrad.analysis.descend import CentralSlope, RegressionSlope, grid_descent
from weakgrad.analysis.mollify import BumpKernel, GaussianKernel, mollify_curve, mollify_trace


@pytest.mark.parametrize("kernel", [BumpKernel(0.3), GaussianKernel(0.1)], ids=["bump", "gauss"])
def test_kernels_have_unit_mass(kernel):
    x = np.linspace(-kernel.radius, kernel.radius, 20001)
    assert np.trapezoid(kernel.weights(x), x) == pytest.approx(1.0, abs=1e-3)


def test_bump_is_compact_gaussian_is_not():
    assert BumpKernel(0.3).weights(np.array([0.3, 0.5, -1.0])).max() == 0.0
    assert GaussianKernel(0.1).weights(np.array([0.35]))[0] > 0.0


def test_constant_stays_constant_up_to_the_borders():
    x = np.linspace(0, 1, 201)
    m = mollify_curve(x, np.full(201, 2.5), BumpKernel(0.1))
    np.testing.assert_allclose(m.y, 2.5, rtol=1e-12)
    assert not m.valid[:20].any() and m.valid[20:-20].all() and not m.valid[-20:].any()


def test_smooth_function_changes_by_order_width_squared():
    x = np.linspace(0, 2 * np.pi, 4001)
    f = np.sin(x)
    errs = []
    for width in (0.2, 0.4):
        m = mollify_curve(x, f, BumpKernel(width))
        errs.append(np.max(np.abs(m.y - f)[m.valid]))
    assert errs[1] / errs[0] == pytest.approx(4.0, rel=0.05)
    assert errs[0] < 0.01


def test_step_becomes_a_monotone_smooth_ramp_of_the_kernel_width():
    x = np.linspace(-1, 1, 2001)
    step = (x > 0).astype(float)
    width = 0.2
    m = mollify_curve(x, step, BumpKernel(width))
    assert np.all(np.diff(m.y) >= -1e-12)
    assert np.all(m.y[x < -width - 1e-9] == 0) and np.allclose(m.y[x > width + 1e-9], 1)
    inside = np.abs(x) < 0.9 * width
    assert np.all((m.y[inside] > 0) & (m.y[inside] < 1))
    assert m.y[np.argmin(np.abs(x))] == pytest.approx(0.5, abs=0.01)
    # Its slope is the kernel: the ramp is smooth.
    slope = np.gradient(m.y, x)
    np.testing.assert_allclose(slope, BumpKernel(width).weights(x), atol=0.05)


def test_trace_repeated_application_widens_the_invalid_border():
    dt = 0.01
    v = np.zeros((1000, 2))
    v[500:510] = 40.0  # a 0.1 ms "spike"
    once = mollify_trace(v, dt, BumpKernel(0.1))
    thrice = mollify_trace(v, dt, BumpKernel(0.1), times=3)
    assert np.sum(~thrice.valid) == 3 * np.sum(~once.valid)
    assert thrice.y.max() < once.y.max() < 40.0  # each pass spreads the spike further
    assert np.sum(thrice.y[:, 0]) == pytest.approx(np.sum(v[:, 0]), rel=1e-9)


def test_bad_kernels_and_grids():
    with pytest.raises(ValueError, match="BumpKernel.width must be > 0"):
        BumpKernel(0.0)
    with pytest.raises(ValueError, match="below the grid spacing"):
        mollify_curve(np.linspace(0, 1, 11), np.zeros(11), BumpKernel(0.05))
    with pytest.raises(ValueError, match="uniform grid"):
        mollify_curve(np.array([0.0, 0.1, 0.5]), np.zeros(3), BumpKernel(0.5))


def _staircase():
    # A bowl seen through a quantiser: flat steps with jumps, like spike-count plateaus.
    w = np.linspace(0, 3, 301)
    return w, np.floor(((w - 2.0) ** 2) / 0.2) * 0.2


def test_finite_differences_get_stuck_where_regression_and_mollification_converge():
    w, loss = _staircase()
    stuck = grid_descent(w, loss, w0=0.5, eta=0.1, steps=100)
    # Stuck on a plateau (zero slope) above the bottom: the loss never reaches its minimum.
    assert stuck.distinct_tail() <= 2 and stuck.loss[-1] > loss.min() + 0.1
    reg = grid_descent(w, loss, w0=0.5, eta=0.02, steps=100, slope=RegressionSlope(10), growth=1.03)
    assert reg.loss[-1] == loss.min()  # the bottom plateau, |w - 2| < 0.45
    smooth = mollify_curve(w, loss, BumpKernel(0.3)).y
    moll = grid_descent(w, smooth, w0=0.5, eta=0.05, steps=100, growth=1.03)
    assert moll.loss[-1] == pytest.approx(smooth.min(), abs=0.02) and abs(moll.w[-1] - 2.0) < 0.45
    # Paths are deterministic, start where asked and stay on the grid.
    again = grid_descent(w, loss, w0=0.5, eta=0.1, steps=100)
    np.testing.assert_array_equal(stuck.w, again.w)
    assert stuck.w[0] == pytest.approx(0.5) and np.all(np.isin(reg.w, w))


def test_slopes_on_a_line_are_exact():
    w = np.linspace(0, 1, 11)
    loss = 3.0 * w - 1.0
    for rule in (CentralSlope(), RegressionSlope(3)):
        assert rule(w, loss, 5) == pytest.approx(3.0) and rule(w, loss, 0) == pytest.approx(3.0)


def test_descent_bad_input():
    w, loss = _staircase()
    with pytest.raises(ValueError, match="outside the grid"):
        grid_descent(w, loss, w0=5.0, eta=0.1, steps=3)
    with pytest.raises(ValueError, match="eta and growth must be > 0"):
        grid_descent(w, loss, w0=1.0, eta=0.0, steps=3)
    bad = loss.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        grid_descent(w, bad, w0=1.0, eta=0.1, steps=3)


def test_score_function_blows_up_at_the_borders_where_quadrature_does_not():
    from weakgrad.analysis.score_vs_quadrature import score_vs_quadrature

    r = score_vs_quadrature(samples=(100, 1000), seed=0)
    border, centre = np.abs(r.x) > 8, np.abs(r.x) < 4

    def err(g, where):
        return float(np.sqrt(np.mean((g - r.reference)[where] ** 2)))

    mc100, mc1000 = r.monte_carlo[100], r.monte_carlo[1000]
    assert err(mc100, border) > 5 * err(mc100, centre)  # blow-up where f is large
    assert 2 < err(mc100, border) / err(mc1000, border) < 7  # ~sqrt(10), heavy tails at S=100
    assert err(r.quadrature[100], border) < 0.05 * err(mc100, border)
    assert err(r.quadrature[1000], border) < err(r.quadrature[100], border)
    # The reference itself: the smoothed gradient of a quadratic is exact.
    q = score_vs_quadrature(lambda x: 0.5 * x**2, x=np.linspace(-3, 3, 7), samples=(50,))
    np.testing.assert_allclose(q.reference, q.x, atol=1e-9)
    np.testing.assert_allclose(q.quadrature[50], q.x, atol=1e-6)


def _staircase_file(tmp_path):
    from weakgrad.analysis.landscape import Landscape1D

    w, loss = _staircase()
    nan = np.full(w.shape, np.nan)
    return Landscape1D(w, w * 34.6, loss, nan, np.zeros_like(w), 1).to_csv(tmp_path / "l.csv")


def test_descend_study_reads_a_curve_and_saves_path_and_outcome(tmp_path):
    import json

    from weakgrad.analysis.descend import DescendSettings, descend_study

    source = _staircase_file(tmp_path)
    fd = descend_study(DescendSettings(landscape=source, w0=0.5, steps=100))
    assert fd.outcome in ("zero slope", "two-point oscillation")
    assert fd.mollified is None and fd.summary().startswith("w 0.5 -> ")
    settings = DescendSettings(
        method="mollified", landscape=source, w0=0.5, eta=0.05, steps=100, growth=1.03, width=0.3
    )
    moll = descend_study(settings)
    assert abs(moll.path.w[-1] - 2.0) < 0.45 and moll.mollified.y.shape == (301,)
    out = tmp_path / "out"
    assert moll.save(out) == out / "path.csv"
    assert {p.name for p in out.iterdir()} == {
        "path.csv",
        "path.png",
        "mollified.csv",
        "descend.json",
        "manifest.json",
    }
    meta = json.loads((out / "descend.json").read_text())
    assert meta["landscape"] == str(source) and meta["width"] == 0.3 and meta["neighbours"] is None
    assert meta["outcome"] == moll.outcome and meta["final_w"] == float(moll.path.w[-1])


def test_descend_settings_and_study_refuse_bad_input(tmp_path):
    from weakgrad.analysis.descend import DescendSettings, descend_study
    from weakgrad.errors import ConfigError

    with pytest.raises(ConfigError, match="--method must be one of fd, regression, mollified"):
        DescendSettings(method="newton")
    with pytest.raises(ConfigError, match="--neighbours must be >= 1"):
        DescendSettings(neighbours=0)
    with pytest.raises(ConfigError, match="does not exist; run weakgrad landscape"):
        DescendSettings(landscape=tmp_path / "missing.csv")
    source = _staircase_file(tmp_path)
    with pytest.raises(ConfigError, match="--w0 5.0 lies outside the curve's range"):
        descend_study(DescendSettings(landscape=source, w0=5.0))
    with pytest.raises(ConfigError, match="--width 0.001 is below the curve's grid spacing"):
        descend_study(DescendSettings(method="mollified", landscape=source, width=0.001))


def test_score_check_errors_on_made_up_estimates_and_files(tmp_path):
    import json

    from weakgrad.analysis.score_vs_quadrature import ScoreVsQuadrature

    x = np.linspace(-10, 10, 5)  # |x| > 8 at the two ends
    off = np.array([3.0, 0.0, 0.0, 0.0, 4.0])
    r = ScoreVsQuadrature(x, x**2, np.zeros(5), {10: off}, {10: np.full(5, 0.5)}, 1.0, seed=7)
    errs = r.errors()
    assert errs["monte_carlo_10"] == {
        "rms": pytest.approx(np.sqrt(5)),
        "rms_border": pytest.approx(12.5**0.5),
    }
    assert errs["quadrature_10"] == {"rms": 0.5, "rms_border": 0.5}
    assert r.save(tmp_path) == tmp_path / "scorecheck.csv"
    meta = json.loads((tmp_path / "scorecheck.json").read_text())
    assert meta == {"samples": [10], "sigma": 1.0, "points": 5, "seed": 7, "errors": errs}
    assert (tmp_path / "scorecheck.csv").read_text().splitlines()[0] == (
        "x,loss,reference,monte_carlo_10,quadrature_10"
    )
    assert (tmp_path / "scorecheck.png").stat().st_size > 10_000


def test_stop_reasons_name_what_happened():
    """Each reason on a curve built to give it: a flat floor (zero slope), a gentle slope
    whose step rounds back to the same grid point, a V that overshoots (two points), and a
    steady slope (still moving)."""
    from weakgrad.analysis.descend import CentralSlope, grid_descent

    w = np.linspace(0.0, 1.0, 101)  # spacing 0.01
    flat = grid_descent(w, np.where(w < 0.5, 0.5 - w, 0.0), w0=0.2, eta=0.05, steps=100)
    assert flat.stop_reason() == "zero slope" and flat.slope[-1] == 0
    gentle = grid_descent(w, -0.1 * w, w0=0.2, eta=0.01, steps=20)  # step 0.001 < 0.005
    assert gentle.stop_reason() == "rounded to no move" and gentle.slope[-1] != 0
    assert "rounded to no move (slope -0.1" in gentle.describe()
    v = grid_descent(w, np.abs(w - 0.505), w0=0.2, eta=0.03, steps=200, slope=CentralSlope())
    assert v.stop_reason() == "two-point oscillation"
    assert v.describe().startswith("two-point oscillation between w = ")
    moving = grid_descent(w, -w, w0=0.0, eta=0.02, steps=10)
    assert moving.stop_reason() == "still moving"
