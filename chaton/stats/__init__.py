"""Usage statistics: one sample per figure, subject and day.

Collectors (:mod:`chaton.stats.collectors`) read each instance's own counts
through its API or data, Chaton's own figures come from its tables, and the
HTTP figures from Caddy's JSON access logs with addresses hashed under a
salt kept only for the day. The daily job runs in the worker's long lane.
"""
