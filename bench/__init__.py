"""Benchmarks, run as scripts (``python bench/run.py``); the tests import the workload generator."""
