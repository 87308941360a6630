"""Running a plan: the sweep loop, one run, preparation, the measurement protocol, the guard, launchers."""
