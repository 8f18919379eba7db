"""Backups: restic repositories, plans, runs, retention and restore drills."""
