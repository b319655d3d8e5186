"""The MNIST training task: mini-batches of digits, validation loss and accuracy, test
scores; optionally scored as the smoothed network node perturbation trains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from weakgrad.estimators.node_perturbation import noisy_readouts
from weakgrad.objectives.losses import accuracy
from weakgrad.tasks.base import AbstractTask, batch_indices, check_batch_sizes
from weakgrad.tasks.mnist import MnistSplits, load_mnist, mnist_objective, shift_digits

if TYPE_CHECKING:
    from weakgrad.config import TrainConfig

__all__ = ["MnistTask"]


# Module-level jitted functions (the objective, noise and sizes are arguments), so a second
# task in the same process reuses the compiled code where shapes match.
@eqx.filter_jit
def _plain_metrics(obj: Any, params: Any, key: Array) -> tuple[Array, Array]:
    readout, valid = obj.readout(params, key)
    losses = jax.vmap(obj.loss)(readout, obj.targets)
    return jnp.mean(jnp.where(valid, losses, jnp.nan)), accuracy(readout, obj.targets)


@eqx.filter_jit
def _smoothed_metrics(
    obj: Any, params: Any, key: Array, sigma: tuple[float, ...], draws: int, hold: int | None
) -> tuple[Array, Array]:
    """The smoothed network: class probabilities averaged over the training noise."""
    readouts, valid = noisy_readouts(obj, params, key, sigma, draws, hold)
    probs = jax.nn.softmax(obj.loss.scale * readouts, axis=-1).mean(0)
    losses = -jnp.log(jnp.take_along_axis(probs, obj.targets[:, None], 1)[:, 0])
    losses = jnp.where(valid.all(0), losses, jnp.nan)
    return jnp.mean(losses), accuracy(probs, obj.targets)


@final
class MnistTask(AbstractTask):
    """MNIST digits on one of the study's 784-``hidden``-10 networks (100 hidden units).

    Args:
        data: the splits (:func:`~weakgrad.tasks.mnist.load_mnist`).
        objective: the network objective, on any batch (``with_batch`` swaps digits in).
        batch_size: digits per training step; ``seed`` orders them (a fresh permutation
            every epoch) and draws the shifts.
        eval_size: validation digits (the first ones).
        test_size: test digits scored (the first ones; None: all).
        train_size: the first N training digits (None: all).
        shift_px: translate each training digit by a random whole number of pixels in
            [-shift_px, shift_px] per axis, fresh every step (0: none).
        eval_noise: ``(sigma per layer, draws, hold steps)``: validate and test with the
            class probabilities averaged over ``draws`` draws of node noise (None: the
            noise-free network).
    """

    def __init__(
        self,
        data: MnistSplits,
        objective: Any,
        *,
        batch_size: int,
        eval_size: int,
        seed: int = 0,
        train_size: int | None = None,
        shift_px: int = 0,
        eval_noise: tuple[tuple[float, ...], int, int | None] | None = None,
        test_size: int | None = None,
    ):
        self.data = data
        self.n_train = train_size or len(data.x_train)
        self.x, self.y = data.x_train[: self.n_train], data.y_train[: self.n_train]
        check_batch_sizes(
            batch_size, self.n_train, eval_size, len(data.x_val), "digits", data.source,
            test_size=test_size, n_test=len(data.x_test),
        )  # fmt: skip
        self.x_test, self.y_test = data.x_test[:test_size], data.y_test[:test_size]
        self.batch, self.seed, self.shift = batch_size, seed, shift_px
        self.objective = objective
        self.x_val, self.y_val = data.x_val[:eval_size], data.y_val[:eval_size]
        self.eval_noise = eval_noise

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> MnistTask:
        t, tr = cfg.task, cfg.train
        data = load_mnist(t.data_dir, seed=tr.seed)
        n = t.train_size or len(data.x_train)
        batch = min(tr.batch_size, n)  # too large: the constructor says so
        objective = mnist_objective(
            t.model, data.x_train[:batch], data.y_train[:batch], key=jax.random.key(tr.seed),
            duration_ms=t.duration_ms, dt_ms=t.dt_ms, init=t.init, init_gain=t.init_gain,
            init_fold=t.init_fold, hidden=t.hidden,
            readout_scale=t.readout_scale, readout=t.readout,
        )  # fmt: skip
        return cls(
            data, objective, batch_size=tr.batch_size, eval_size=tr.eval_size, seed=tr.seed,
            train_size=t.train_size, shift_px=t.shift_px,
            eval_noise=cfg.estimator.eval_noise(t.n_layers, t.time_step),
            test_size=tr.test_size,
        )  # fmt: skip

    @property
    def draws(self) -> int:
        return self.eval_noise[1] if self.eval_noise else 0

    def initial_params(self) -> Any:
        return self.objective.params()

    def objective_at(self, step: int) -> Any:
        idx = batch_indices(step, self.n_train, self.batch, self.seed)
        x = self.x[idx]
        if self.shift:
            # A function of the step, like the batch, so a resumed run sees the same digits.
            rng = np.random.default_rng([self.seed, step, 1])
            x = shift_digits(x, rng.integers(-self.shift, self.shift + 1, size=(len(x), 2)))
        return self.objective.with_batch(jnp.asarray(x), jnp.asarray(self.y[idx]))

    def _metrics(
        self, params: Any, xs: np.ndarray, ys: np.ndarray, key: Array, smoothed: bool,
        chunk: int = 200,
    ) -> tuple[float, float]:  # fmt: skip
        losses, accs, ns = [], [], []
        for i in range(0, len(xs), chunk):
            o = self.objective.with_batch(
                jnp.asarray(xs[i : i + chunk]), jnp.asarray(ys[i : i + chunk])
            )
            if smoothed and self.eval_noise is not None:
                loss, acc = _smoothed_metrics(o, params, key, *self.eval_noise)
            else:
                loss, acc = _plain_metrics(o, params, key)
            losses.append(float(loss))
            accs.append(float(acc))
            ns.append(len(xs[i : i + chunk]))
        w = np.asarray(ns) / sum(ns)
        return float(np.dot(losses, w)), float(np.dot(accs, w))

    def validate(self, params: Any, key: Array) -> tuple[float, float]:
        return self._metrics(params, self.x_val, self.y_val, key, smoothed=True)

    def score(self, params: Any, key: Array) -> dict[str, Any]:
        xt, yt = self.x_test, self.y_test
        loss, acc = self._metrics(params, xt, yt, key, smoothed=True)
        out = {"test_loss": loss, "test_accuracy": acc, "test_size": len(xt),
               "data": self.data.source}  # fmt: skip
        if self.eval_noise is not None:  # what the noise-free network scores, beside it
            loss, acc = self._metrics(params, xt, yt, key, smoothed=False)
            out.update({"eval_draws": self.draws, "noise_free_test_loss": loss,
                        "noise_free_test_accuracy": acc})  # fmt: skip
        return out
