"""Benchmarks (printed numbers, not tests); see README.md, "Benchmarks"."""
