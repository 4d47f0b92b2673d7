"""``python -m wattledger`` runs the CLI."""

from wattledger.cli import main

main()
