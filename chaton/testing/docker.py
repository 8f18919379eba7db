"""Pytest fixtures of the services tests (docker); loaded by chaton.testing.pytest_plugin."""
