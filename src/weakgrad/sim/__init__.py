"""The simulator: neuron models (one file each), synapses, counter-based random streams,
the :class:`Network` pytree and :func:`simulate`, one ``lax.scan``.

It knows nothing of estimators: perturbations enter through one small interface,
:class:`~weakgrad.sim.network.AbstractPerturbation`.
"""
