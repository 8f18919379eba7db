"""``python -m chaton …`` runs the ``chaton`` command."""

from chaton.cli.entry import main

main()
