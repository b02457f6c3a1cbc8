"""Helpers for tests, demos and benchmarks: not part of the client's API."""
