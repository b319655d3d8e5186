import os

from cli_helpers import SUITE_XLA_FLAGS

# Tests run on the CPU with one device unless a test asks for more (in a subprocess).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Most of a test's time is XLA compiling small programs once: compile them cheaply
# (SUITE_XLA_FLAGS says how). Subprocess tests that set XLA_FLAGS pass the same flags.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SUITE_XLA_FLAGS}".strip()

import jax  # noqa: E402

# Mixed-precision arithmetic must be asked for, never happen by accident: float32 stays
# float32 and float64 runs (on request) stay float64.
jax.config.update("jax_numpy_dtype_promotion", "strict")
