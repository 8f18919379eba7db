"""Chaton: the operations platform of a small ethical hosting collective."""

__version__ = "0.1.0"
