"""greenrt's command line. Each verb parses its options, calls one function of the rooms below, and presents what
it returns: measure.py (doctor, plan, sweep, run), results.py (report, merge, status, compare), provision.py
(images, env); app.py holds the application, its consoles and the shared help texts."""
from orchestrator.cli import advise, measure, provision, results  # noqa: F401 - importing registers each group's verbs
from orchestrator.cli.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console script entry
    app()
