from chaton.core import registry
from chaton.core.registry import CliGroup, DemoLoader, NavEntry


class ExampleConfig(registry.ChatonAppConfig):
    name = "chaton.testing.example_app"
    label = "example"
    verbose_name = "Example"
    api_routers = [("/example", "chaton.testing.example_app.api:router")]
    urls = "chaton.testing.example_app.urls"
    jobs = "chaton.testing.example_app.jobs"
    nav = [NavEntry(label="Example", url_name="example-page", admin_only=True, order=85)]
    cli = [CliGroup("example", "chaton.testing.example_app.cli:app", "The example app.")]
    demo = DemoLoader("chaton.testing.example_app.demo:load", order=60)
