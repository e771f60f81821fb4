"""Builders for small, real restore layouts used by tests/test_graph*.py."""
