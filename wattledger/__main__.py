"""``python -m wattledger`` runs the CLI (or names the extra it needs)."""

from wattledger._entry import main

if __name__ == "__main__":  # not on import (multiprocessing's spawn re-imports __main__)
    main()
