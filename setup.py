"""Map the top-level architecture folders into the ``wattledger`` namespace.

``collectors/`` installs as ``wattledger.collectors``, ``models/`` as ``wattledger.models`` and so
on (see docs/architecture.md), so a service that installs us keeps its own ``models`` module.
Everything else lives in pyproject.toml.
"""

from setuptools import find_packages, setup

FOLDERS = ("catalog", "collectors", "ingest", "models", "analytics", "dashboard", "migrations")

package_dir = {"wattledger": "wattledger"}
packages = ["wattledger", *(f"wattledger.{p}" for p in find_packages("wattledger"))]
for folder in FOLDERS:
    package_dir[f"wattledger.{folder}"] = folder
    packages += [
        f"wattledger.{folder}",
        *(f"wattledger.{folder}.{p}" for p in find_packages(folder)),
    ]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={
        pkg: [
            "py.typed",
            "*.mako",
            "*.toml",
            "*.json",
            "*.csv",
            "*.yaml",
            "*.md",
            "data/*",
            "data/**/*",
        ]
        for pkg in packages
    },
    include_package_data=False,
)
