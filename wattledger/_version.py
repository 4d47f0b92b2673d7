"""The package version, single-sourced for pyproject and ``wattledger --version``."""

__version__ = "0.1.0"
