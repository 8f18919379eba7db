import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def hello() -> None:
    """Say that the example app's group is mounted."""
    typer.echo("hello from the example app")


@app.command()
def other() -> None:
    """A second command, so that ``hello`` stays a sub-command."""
