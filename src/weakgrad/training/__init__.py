"""Training: the loop (:mod:`.loop`: optax, evaluation cadence, EMA, keep-best, resume),
optimisers (:mod:`.optim`), the run's files (:mod:`.checkpoint`) and rescoring a run
(:mod:`.evaluate`)."""

# Imported here, not lazily: the function ``evaluate`` must shadow the submodule of the same
# name (``from weakgrad.training import evaluate`` gives the function).
from weakgrad.training.evaluate import evaluate
from weakgrad.training.loop import TrainResult, train

__all__ = ["TrainResult", "evaluate", "train"]
