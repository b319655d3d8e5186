"""Objectives: what estimators sample. :mod:`~weakgrad.objectives.base` holds the plain and
host (external simulator) objectives; :mod:`~weakgrad.objectives.network` the declared
network objective that node perturbation and surrogate gradients need; losses and
readouts beside them; :mod:`~weakgrad.objectives.events` the event-simulated LIF objective
of EventProp (first-spike-time and max-voltage readouts and losses)."""
