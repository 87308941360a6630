"""The host tests' helpers: the simulated NVIDIA host, synthetic records and sweeps, fault injection, a private Slurm
cluster. Imported as `testkit.<module>` (pyproject's pytest `pythonpath` puts tests/host on the path)."""
