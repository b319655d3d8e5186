import os

# Tests run on the CPU with one device unless a test asks for more (in a subprocess).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
