"""Governance: proposals, votes and the decisions that authorise operations."""
