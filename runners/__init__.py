"""Runs INSIDE a runtime's environment: `python -m runners run|export --request FILE`.

Imports nothing but the standard library at import time; each adapter imports its own framework lazily.
"""
