"""Runs INSIDE a runtime's environment: `python -m runners run|export --request FILE`.

Imports nothing but the standard library at import time; each adapter imports its own framework lazily.
"""
import time

# The first thing `python -m runners` executes: the start of the runner's process on the host's monotonic clock
# (containers share it), from which the launcher's start-up cost is measured.
PROCESS_START_NS = time.monotonic_ns()
