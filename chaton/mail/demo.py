from chaton.core.demo import DemoReport


def load(report: DemoReport) -> None:
    """Nothing yet."""
