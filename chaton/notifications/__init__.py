"""Notifications: mail and webhook messages queued in the database, sent through the
notifications adapter, retried by the worker (see :mod:`chaton.notifications.outbox`)."""
