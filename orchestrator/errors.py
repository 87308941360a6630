"""Errors the CLI turns into one line on stderr and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user (config, CLI argument, results directory); the message is shown as is."""
