"""Seed 004's degeneracy experiments ("Why is it hard to train deep neural networks?
Degeneracy, not vanishing gradients, is the key"; issue 18):

- :func:`matrix_products` -- singular values of products of 1, 10 and 100 random
  ``1/sqrt(n)`` Gaussian matrices against orthogonal ones (after Saxe, McClelland & Ganguli
  2014, their figure of depth 1/10/100): the Gaussian product's spectrum spreads over
  decades as depth grows while the orthogonal product's stays at 1;
- :func:`deep_linear` -- a deep linear network (seed: 30 layers, 64 wide) learning a random
  linear map with plain SGD from four initialisations (fold 0 = Gaussian, fold 1,
  orthogonal, orthogonal x 0.8): learning curves and per-layer gradient norms (with respect
  to the layers' activations, as in the seed) at initialisation and after a few steps,
  with standard errors over runs.

Each takes frozen settings (``quick()``/``full()``) and returns a result with ``summary()``
and ``.save(folder)`` (CSV, JSON and figures through :mod:`weakgrad.io`). They measure; the
report decides whether the seed's claims hold.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from weakgrad.analysis._checks import require
from weakgrad.analysis._checks import seed as check_seed
from weakgrad.analysis.jacobian import degeneracy
from weakgrad.sim.init import AbstractInit, Fold, Gaussian, Orthogonal

__all__ = [
    "ProductSettings",
    "ProductSpectra",
    "matrix_products",
    "DeepLinearSettings",
    "DeepLinearResult",
    "deep_linear",
    "seed_inits",
]


def _int(name: str, value: Any, low: int) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    require(ok, f"{name} must be an int >= {low}, got {value!r}.")


def _sem(v: np.ndarray, axis: int = 0) -> np.ndarray:
    n = v.shape[axis]
    if n < 2:
        return np.full(np.delete(v.shape, axis), np.nan)
    return v.std(axis=axis, ddof=1) / np.sqrt(n)


# ---------------------------------------------------------------- products of matrices


class ProductSettings(eqx.Module):
    """Products of ``depth`` random ``n x n`` matrices, ``samples`` products per depth.

    Attributes:
        n: matrix size.
        depths: the numbers of matrices multiplied (seed: 1, 10, 100).
        samples: independent products per depth and kind (their spectra are pooled).
        threshold: relative threshold of the fraction-below measure.
        seed: PRNG seed.
    """

    n: int = eqx.field(static=True, default=100)
    depths: tuple[int, ...] = eqx.field(static=True, default=(1, 10, 100))
    samples: int = eqx.field(static=True, default=20)
    threshold: float = eqx.field(static=True, default=1e-3)
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        _int("n", self.n, 2)
        _int("samples", self.samples, 1)
        require(len(self.depths) > 0, "depths must list at least one depth.")
        for d in self.depths:
            _int("depths", d, 1)
        require(0 < self.threshold < 1, f"threshold must be in (0, 1), got {self.threshold}.")
        check_seed(self.seed, "seed")

    @classmethod
    def quick(cls) -> ProductSettings:
        return cls(n=64, depths=(1, 10, 100), samples=4)

    @classmethod
    def full(cls) -> ProductSettings:
        return cls()


@dataclasses.dataclass(frozen=True)
class ProductSpectra:
    """``values[(kind, depth)]`` ``(samples, n)``: singular values of the products,
    ``kind`` in ``("gaussian", "orthogonal")``."""

    settings: ProductSettings
    values: dict[tuple[str, int], np.ndarray]

    def measures(self) -> dict[str, dict[str, float]]:
        """Degeneracy measures per ``"kind depth"`` (mean and standard error over the
        samples), plus the median singular value and the fraction below 0.1 (absolute:
        the seed's "concentrated around 0")."""
        out = {}
        for (kind, depth), s in self.values.items():
            m = degeneracy(s, self.settings.threshold)
            m["median"] = float(np.median(s))
            m["fraction_below_0.1"] = float(np.mean(s < 0.1))
            m["max"] = float(s.max())
            out[f"{kind} {depth}"] = m
        return out

    def summary(self) -> str:
        return "; ".join(
            f"{k}: effective rank {m['effective_rank_fraction']:.2f} n, spread "
            f"{m['spread']:.2f} decades, {m['fraction_below_0.1']:.2f} below 0.1"
            for k, m in self.measures().items()
        )

    def figure(self):
        """Histograms of log10 singular values, one panel per depth."""
        import matplotlib.pyplot as plt

        depths = self.settings.depths
        fig, axes = plt.subplots(1, len(depths), figsize=(3.6 * len(depths), 3), squeeze=False)
        for ax, d in zip(axes[0], depths, strict=True):
            g = np.log10(np.maximum(self.values[("gaussian", d)].ravel(), 1e-300))
            o = np.log10(self.values[("orthogonal", d)].ravel())
            lo, hi = min(g.min(), o.min(), -0.5), max(g.max(), o.max(), 0.5)
            bins = np.linspace(lo, hi, 40)
            ax.hist(g, bins, alpha=0.7, label="Gaussian 1/sqrt(n)", color="tab:red")
            ax.hist(o, bins, alpha=0.7, label="orthogonal", color="tab:blue")
            ax.set_title(f"product of {d} matri{'x' if d == 1 else 'ces'}")
            # below ~1e-15 x max a float64 product holds only roundoff
            ax.axvline(np.log10(np.finfo(np.float64).eps), color="0.5", lw=0.8, ls=":")
            ax.set_xlabel("log10 singular value")
            ax.set_ylabel("count")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        return fig

    def save(self, out: str | os.PathLike) -> Path:
        """``products_spectra.csv`` (kind, depth, sample, index, value),
        ``products.json`` (settings, measures), ``products.png``; returns the JSON's path."""
        from weakgrad.io import write_csv, write_json
        from weakgrad.plots import save_figure

        out = Path(out)
        rows = [
            [kind, depth, b, i, float(v)]
            for (kind, depth), s in self.values.items()
            for b in range(s.shape[0])
            for i, v in enumerate(s[b])
        ]
        write_csv(out / "products_spectra.csv", ["kind", "depth", "sample", "index", "value"], rows)
        save_figure(self.figure(), out / "products.png")
        return write_json(
            out / "products.json",
            {"settings": _settings_dict(self.settings), "measures": self.measures()},
        )


def _settings_dict(s: eqx.Module) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s)}


def matrix_products(settings: ProductSettings | None = None) -> ProductSpectra:
    """Singular values of products of ``depth`` Gaussian (:class:`Gaussian`) and orthogonal
    (:class:`Orthogonal`) ``n x n`` matrices (drawn in float32, multiplied in float64 so
    that depth 100 keeps its small singular values down to float64's roundoff: at depth
    100 about 10-20% of the Gaussian product's values sit at that floor, ~1e-15 times the
    largest, so its ``spread`` saturates near 15 decades; the exact values are smaller)."""
    s = ProductSettings.quick() if settings is None else settings
    key = jax.random.key(s.seed)
    values = {}
    for kind, init in (("gaussian", Gaussian()), ("orthogonal", Orthogonal())):
        kkind = jax.random.fold_in(key, 0 if kind == "gaussian" else 1)
        for depth in s.depths:
            keys = jax.random.split(jax.random.fold_in(kkind, depth), (s.samples, depth))
            ws = np.asarray(
                jax.vmap(jax.vmap(lambda k, init=init: init(k, s.n, s.n)))(keys), np.float64
            )
            prods = np.stack([np.linalg.multi_dot([*w, np.eye(s.n)]) for w in ws])
            values[(kind, depth)] = np.linalg.svd(prods, compute_uv=False)
    return ProductSpectra(s, values)


# ---------------------------------------------------------------- deep linear network


def seed_inits() -> dict[str, AbstractInit]:
    """The seed's four initialisations, by the names the results use."""
    return {
        "fold 0": Gaussian(),
        "fold 1": Fold(Gaussian(), 1),
        "orthogonal": Orthogonal(),
        "orthogonal x 0.8": Orthogonal(0.8),
    }


class DeepLinearSettings(eqx.Module):
    """A ``layers``-deep, ``width``-wide linear network ``y = x W_1 ... W_L`` learning a
    random linear map ``x A`` (``A`` Gaussian ``1/sqrt(width)``, one per run) from inputs
    ``x ~ N(0, I)``, fresh ``batch`` inputs per step, with plain SGD (``learning_rate``) on
    the mean squared error per output (or Adam, ``optimizer="adam"``).

    The learning curve is the exact expected loss ``||W_1 ... W_L - A||_F^2 / width`` (no
    sampling noise); gradient norms are per layer and example, of the per-example loss with
    respect to the layer's output activation, averaged over ``eval_batch`` inputs, at
    initialisation and after ``early`` steps.

    Attributes:
        layers, width: the network (seed: 30, 64).
        runs: independent runs per initialisation (seed: 10): networks, targets, data.
        steps, batch, learning_rate: the training.
        optimizer: ``"sgd"`` (plain SGD, the default) or ``"adam"`` (the seed notes that
            adaptive optimisers are nearly invariant to the size of the gradients).
        early: the step of the second gradient-norm measurement ("after a few epochs").
        eval_batch: inputs of the gradient-norm measurement.
        inits: which of :func:`seed_inits` to run.
        seed: PRNG seed.
    """

    layers: int = eqx.field(static=True, default=30)
    width: int = eqx.field(static=True, default=64)
    runs: int = eqx.field(static=True, default=10)
    steps: int = eqx.field(static=True, default=1000)
    batch: int = eqx.field(static=True, default=32)
    learning_rate: float = eqx.field(static=True, default=0.01)
    optimizer: str = eqx.field(static=True, default="sgd")
    early: int = eqx.field(static=True, default=100)
    eval_batch: int = eqx.field(static=True, default=64)
    inits: tuple[str, ...] = eqx.field(
        static=True, default=("fold 0", "fold 1", "orthogonal", "orthogonal x 0.8")
    )
    seed: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        for name in ("layers", "width", "runs", "steps", "batch", "eval_batch"):
            _int(name, getattr(self, name), 1)
        _int("early", self.early, 0)
        require(self.early <= self.steps, f"early ({self.early}) must be <= steps ({self.steps}).")
        lr = self.learning_rate
        require(
            isinstance(lr, int | float) and not isinstance(lr, bool) and 0 < lr < np.inf,
            f"learning_rate must be a positive number, got {lr!r}.",
        )
        require(
            self.optimizer in ("sgd", "adam"),
            f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}.",
        )
        known = seed_inits()
        bad = [i for i in self.inits if i not in known]
        require(
            bool(self.inits) and not bad,
            f"inits must name some of {list(known)}, got unknown {bad or 'none'}.",
        )
        check_seed(self.seed, "seed")

    @classmethod
    def quick(cls) -> DeepLinearSettings:
        # a larger step than full's: 8 layers train stably at 0.05 and show more in 100 steps
        return cls(
            layers=8, width=16, runs=3, steps=100, early=10, eval_batch=32, learning_rate=0.05
        )

    @classmethod
    def full(cls) -> DeepLinearSettings:
        return cls()


@dataclasses.dataclass(frozen=True)
class DeepLinearResult:
    """Per initialisation name: ``loss[name]`` ``(runs, steps + 1)`` expected loss before
    each step and after the last; ``grad_init[name]``, ``grad_early[name]`` ``(runs,
    layers)`` mean per-example gradient norm with respect to each layer's output at
    initialisation and after ``settings.early`` steps; ``spectra[name]`` ``(runs, width)``
    singular values of the initial weight product (the network's input-output Jacobian)."""

    settings: DeepLinearSettings
    loss: dict[str, np.ndarray]
    grad_init: dict[str, np.ndarray]
    grad_early: dict[str, np.ndarray]
    spectra: dict[str, np.ndarray]

    def measures(self) -> dict[str, dict[str, float]]:
        """Per initialisation, means and standard errors over runs: initial and final loss,
        gradient norm averaged over layers at initialisation and at ``early``, and the
        initial product's degeneracy measures."""
        out = {}
        for name in self.loss:
            m: dict[str, float] = {}
            for key, v in (
                ("loss_initial", self.loss[name][:, 0]),
                ("loss_final", self.loss[name][:, -1]),
                ("grad_norm_init", self.grad_init[name].mean(1)),
                ("grad_norm_early", self.grad_early[name].mean(1)),
            ):
                m[key], m[f"{key}_sem"] = float(v.mean()), float(_sem(v))
            for key, v in degeneracy(self.spectra[name]).items():
                m[f"product_{key}"] = v
            out[name] = m
        return out

    def summary(self) -> str:
        return "; ".join(
            f"{name}: final loss {m['loss_final']:.3g} +- {m['loss_final_sem']:.2g}, gradient "
            f"norm {m['grad_norm_init']:.3g} at init, {m['grad_norm_early']:.3g} at step "
            f"{self.settings.early}"
            for name, m in self.measures().items()
        )

    def figures(self) -> dict[str, Any]:
        """``learning_curves`` (mean +- standard error, log loss) and ``gradient_norms``
        (per layer, at initialisation and at ``early``)."""
        import matplotlib.pyplot as plt

        colors = dict(zip(seed_inits(), ["k", "tab:blue", "tab:green", "tab:purple"], strict=True))
        fig, ax = plt.subplots(figsize=(5, 3.6))
        t = np.arange(self.settings.steps + 1)
        for name, loss in self.loss.items():
            m, e = loss.mean(0), _sem(loss)
            ax.plot(t, m, color=colors[name], label=name)
            if loss.shape[0] > 1:
                ax.fill_between(t, m - e, m + e, color=colors[name], alpha=0.25, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("SGD step")
        ax.set_ylabel("expected loss (MSE per output)")
        ax.set_title(f"deep linear network, {self.settings.layers} layers x {self.settings.width}")
        ax.legend(fontsize=7)
        curves = fig
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
        layer = np.arange(1, self.settings.layers + 1)
        for ax, grads, when in (
            (axes[0], self.grad_init, "at initialisation"),
            (axes[1], self.grad_early, f"after {self.settings.early} steps"),
        ):
            for name, g in grads.items():
                ax.errorbar(layer, g.mean(0), _sem(g), color=colors[name], label=name, capsize=2)
            ax.set_yscale("log")
            ax.set_xlabel("layer")
            ax.set_title(f"gradient norms {when}")
        axes[0].set_ylabel("|dL/d activation| (mean over inputs)")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        return {"learning_curves": curves, "gradient_norms": fig}

    def save(self, out: str | os.PathLike) -> Path:
        """``deep_linear_loss.csv`` (init, run, step, loss), ``deep_linear_grads.csv`` (init,
        run, layer, at init, at early), ``deep_linear.json`` (settings, measures) and the
        figures ``deep_linear_{name}.png``; returns the JSON's path."""
        from weakgrad.io import write_csv, write_json
        from weakgrad.plots import save_figure

        out = Path(out)
        write_csv(
            out / "deep_linear_loss.csv",
            ["init", "run", "step", "loss"],
            [
                [name, r, t, float(v)]
                for name, loss in self.loss.items()
                for r in range(loss.shape[0])
                for t, v in enumerate(loss[r])
            ],
        )
        write_csv(
            out / "deep_linear_grads.csv",
            ["init", "run", "layer", "grad_norm_init", "grad_norm_early"],
            [
                [name, r, li + 1, float(g[r, li]), float(self.grad_early[name][r, li])]
                for name, g in self.grad_init.items()
                for r in range(g.shape[0])
                for li in range(g.shape[1])
            ],
        )
        for name, fig in self.figures().items():
            save_figure(fig, out / f"deep_linear_{name}.png")
        return write_json(
            out / "deep_linear.json",
            {"settings": _settings_dict(self.settings), "measures": self.measures()},
        )


def _forward(ws, x, z):
    """``x W_1 ... W_L`` with ``z[l]`` added to layer ``l``'s output (zeros: gradients with
    respect to them are those with respect to the activations)."""

    def layer(h, wz):
        w, zl = wz
        h = h @ w + zl
        return h, None

    h, _ = jax.lax.scan(layer, x, (ws, z))
    return h


def _expected_loss(ws, a):
    prod = jax.lax.fori_loop(
        0, ws.shape[0], lambda i, p: p @ ws[i], jnp.eye(a.shape[0], dtype=a.dtype)
    )
    # E_x mean_j ((x (P - A))_j^2) for x ~ N(0, I): ||P - A||_F^2 / width
    return jnp.sum((prod - a) ** 2) / a.shape[0]


def _grad_norms(ws, a, x):
    """``(layers,)`` mean over the examples of ``|d loss_example / d h_l|``."""
    z = jnp.zeros((ws.shape[0], *x.shape), x.dtype)

    def total(z):
        # a sum of per-example losses: its gradient is each example's own
        return jnp.sum(jnp.mean((_forward(ws, x, z) - x @ a) ** 2, axis=-1))

    g = jax.grad(total)(z)  # (layers, B, width)
    return jnp.linalg.norm(g, axis=-1).mean(-1)


def _run(settings: DeepLinearSettings, ws, a, key):
    """One run: the loss curve ``(steps + 1,)`` and gradient norms at 0 and ``early``."""
    s = settings
    opt = optax.sgd(s.learning_rate) if s.optimizer == "sgd" else optax.adam(s.learning_rate)
    k_eval, k_train = jax.random.split(key)
    x_eval = jax.random.normal(k_eval, (s.eval_batch, s.width))

    def loss(ws, x):
        z = jnp.zeros((ws.shape[0], *x.shape), x.dtype)
        return jnp.mean((_forward(ws, x, z) - x @ a) ** 2)

    def step(carry, k):
        ws, state = carry
        x = jax.random.normal(k, (s.batch, s.width))
        g = jax.grad(loss)(ws, x)
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int and float
            upd, state = opt.update(g, state, ws)
        ws = optax.apply_updates(ws, upd)
        return (ws, state), _expected_loss(ws, a)

    keys = jax.random.split(k_train, s.steps)
    carry = (ws, opt.init(ws))
    # two scans so the weights at step ``early`` come out without stacking every step's
    (ws_early, state), loss_a = jax.lax.scan(step, carry, keys[: s.early])
    _, loss_b = jax.lax.scan(step, (ws_early, state), keys[s.early :])
    curve = jnp.concatenate([_expected_loss(ws, a)[None], loss_a, loss_b])
    return curve, _grad_norms(ws, a, x_eval), _grad_norms(ws_early, a, x_eval)


def deep_linear(settings: DeepLinearSettings | None = None) -> DeepLinearResult:
    """Train the deep linear network of ``settings`` (default: quick) from each
    initialisation, ``runs`` times; runs of every initialisation share their targets and
    data (run ``r`` of each sees the same ``A`` and inputs), so the comparison is paired.
    Float32."""
    s = DeepLinearSettings.quick() if settings is None else settings
    inits = seed_inits()
    key = jax.random.key(s.seed)
    k_target, k_data, k_weights = jax.random.split(key, 3)
    a = jax.vmap(lambda k: Gaussian()(k, s.width, s.width))(jax.random.split(k_target, s.runs))
    data_keys = jax.random.split(k_data, s.runs)
    run = jax.jit(jax.vmap(lambda ws, a, k: _run(s, ws, a, k)))
    loss, g0, g1, spectra = {}, {}, {}, {}
    for i, name in enumerate(s.inits):
        init = inits[name]
        keys = jax.random.split(jax.random.fold_in(k_weights, i), (s.runs, s.layers))
        ws = jax.vmap(jax.vmap(lambda k, init=init: init(k, s.width, s.width)))(keys)
        curve, gi, ge = run(ws, a, data_keys)
        loss[name], g0[name], g1[name] = np.asarray(curve), np.asarray(gi), np.asarray(ge)
        prods = np.stack(
            [np.linalg.multi_dot([*w, np.eye(s.width)]) for w in np.asarray(ws, np.float64)]
        )
        spectra[name] = np.linalg.svd(prods, compute_uv=False)
    return DeepLinearResult(s, loss, g0, g1, spectra)
