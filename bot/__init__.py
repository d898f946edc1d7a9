"""Privacy answers bot: cited answers about platforms training AI on user data."""

import os

# The engine embeds on a worker thread (so an event loop hosting several front ends stays free).
# With OpenMP's default busy-wait policy, the idle thread team of whichever thread touched torch
# first spins and starves that worker: answers took 5-8x longer on these 2 cores. Passive waiting
# costs nothing measurable. It must be set before torch is imported, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
