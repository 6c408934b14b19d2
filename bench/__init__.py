"""Benchmarks of the worker against the bare ``realtime`` client and the local stack.

``python -m bench`` (``make bench``) runs every benchmark, prints a table and writes
``bench/results/latest.json`` and ``bench/results/rotation_latency.svg``. See
``docs/performance.md`` for the figures and how to read them.
"""
