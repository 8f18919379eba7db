from chaton.core.demo import DemoReport


def load(report: DemoReport) -> None:
    """The example app's part of ``chaton demo``: one line, after every other part."""
    report.created.append("example item")
