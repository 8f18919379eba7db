"""Monitoring: probes derived from the desired state, incidents, alerts, roll-ups.

The reconcile (:mod:`chaton.monitoring.derive`) keeps one probe per thing
Chaton runs; the cycle (:mod:`chaton.monitoring.cycle`) runs the due probes
through the probe engine, stores results, moves states, opens and resolves
incidents and queues alerts; the roll-ups keep years of history compactly.
"""
