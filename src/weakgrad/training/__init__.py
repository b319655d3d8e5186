"""Training: the loop (optax, evaluation cadence, EMA, keep-best, resume) and its
checkpoint and metrics files."""
