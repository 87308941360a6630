"""How energy is measured: sensors, the background sampler, window energy, accounting, idle baseline, cooldown, GPU descriptions."""
