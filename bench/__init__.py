"""Benchmarks: speed goals measured and printed, never asserted in the test suite."""
