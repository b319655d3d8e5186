import os

# Tests run on the CPU with one device unless a test asks for more (in a subprocess).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

# Mixed-precision arithmetic must be asked for, never happen by accident: float32 stays
# float32 and float64 runs (on request) stay float64.
jax.config.update("jax_numpy_dtype_promotion", "strict")
