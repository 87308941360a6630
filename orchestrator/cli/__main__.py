"""`python -m orchestrator.cli`: the same command line where the console script is not installed."""
import sys

from orchestrator.cli import app

sys.exit(app())
