"""What a sweep will do: the config, the runtimes table and the planner (pure functions of config and host)."""
