import os

# Tests run on the CPU with one device unless a test asks for more (in a subprocess).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Most of a test's time is XLA compiling small programs once: compile them with the
# backend's optimisation passes off (about 4x faster to compile; the same arithmetic up to
# float rounding, and the tests compare with tolerances or with runs compiled alike).
# Subprocess tests that set XLA_FLAGS themselves keep their own.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
).strip()

import jax  # noqa: E402

# Mixed-precision arithmetic must be asked for, never happen by accident: float32 stays
# float32 and float64 runs (on request) stay float64.
jax.config.update("jax_numpy_dtype_promotion", "strict")
