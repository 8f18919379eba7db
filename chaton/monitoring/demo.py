from chaton.core.demo import DemoReport


def load(report: DemoReport) -> None:
    """Monitoring's part of the demo: the reconcile derives every probe."""
