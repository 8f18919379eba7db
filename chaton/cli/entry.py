"""The ``chaton`` console script: picks the cheap path for ``ssh-keys`` before anything loads.

sshd runs ``chaton ssh-keys USER`` at every login attempt, so that command must
start in milliseconds: it is handed to :mod:`chaton.cli.sshkeys` without
importing typer, rich or Django. Every other command goes to the full
application, :mod:`chaton.cli.app`.

Keep this module's imports to the standard library.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Global options of ``chaton`` that take a value (``--config PATH``, ``--as UID``).
_OPTIONS_WITH_VALUE = ("--config", "--as")


def split_command(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """Given the arguments after ``chaton``, return (global options, command, its arguments).

    The command is the first argument that is neither an option nor an
    option's value; None when there is none (``chaton --help``).
    """
    arguments = list(argv)
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if argument in _OPTIONS_WITH_VALUE:
            index += 2
            continue
        if argument.startswith("-"):
            index += 1
            continue
        return arguments[:index], argument, arguments[index + 1:]
    return arguments, None, []


def _config_option(options: Sequence[str]) -> list[str]:
    """Return the ``--config`` given among the global options, as arguments for ssh-keys."""
    found: list[str] = []
    for index, option in enumerate(options):
        if option == "--config" and index + 1 < len(options):
            found = ["--config", options[index + 1]]
        elif option.startswith("--config="):
            found = [option]
    return found


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``chaton`` with ``argv`` (``sys.argv[1:]`` when None) and exit with its status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options, command, rest = split_command(arguments)
    if command == "ssh-keys":
        from chaton.cli import sshkeys

        sys.exit(sshkeys.main([*_config_option(options), *rest]))
    from chaton.cli import app

    app.run(arguments)


if __name__ == "__main__":
    main()
