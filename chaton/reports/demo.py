from chaton.core.demo import DemoReport


def load(report: DemoReport) -> None:
    """Create the draft report of the current semester."""
