"""Example handler modules for the worker (not part of the wheel)."""
