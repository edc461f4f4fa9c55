"""Test doubles shared by the tests and the benchmarks (not product code: never installed or shipped)."""
