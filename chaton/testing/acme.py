"""Pytest fixtures of the services tests (acme); loaded by chaton.testing.pytest_plugin."""
