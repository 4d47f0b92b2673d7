"""``python -m wattledger`` runs the CLI."""

from wattledger.cli import main

if __name__ == "__main__":  # not on import (multiprocessing's spawn re-imports __main__)
    main()
