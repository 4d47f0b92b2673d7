"""Build a powercap RAPL sysfs tree in a directory, for tests and the demo.

The layout mirrors ``/sys/class/powercap`` (Documentation/power/powercap/powercap.rst): one
directory per zone, ``intel-rapl:<N>`` for packages and ``intel-rapl:<N>:<M>`` for subzones,
each with ``name``, ``energy_uj``, ``max_energy_range_uj`` and ``enabled``.

Example::

    tree = FakeRapl(tmp_path)
    pkg = tree.add_zone("intel-rapl:0", "package-0", energy_uj=10_000)
    pkg.add_energy(5_000_000)       # +5 J, wrapping at max_energy_range_uj like the MSR
    source = RaplSource(root=tmp_path)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: A typical 32-bit RAPL range: 2^32 units of 61 µJ (Intel server parts report ~262 kJ).
DEFAULT_RANGE_UJ = 262_143_328_850


@dataclass
class FakeRaplZone:
    """One zone directory; change its counter with :meth:`set_energy` / :meth:`add_energy`."""

    path: Path
    max_energy_range_uj: int

    @property
    def energy_uj(self) -> int:
        """The counter as the file shows it."""
        return int((self.path / "energy_uj").read_text())

    def set_energy(self, energy_uj: int) -> None:
        """Write the counter (in place, like the kernel: the file is not replaced)."""
        with open(self.path / "energy_uj", "r+") as fh:
            fh.seek(0)
            fh.write(f"{energy_uj}\n")
            fh.truncate()

    def add_energy(self, delta_uj: int) -> None:
        """Advance the counter by ``delta_uj``, wrapping at ``max_energy_range_uj``."""
        self.set_energy((self.energy_uj + delta_uj) % self.max_energy_range_uj)

    def remove(self) -> None:
        """Make the zone vanish (hot-unplug of the package's driver)."""
        for child in self.path.iterdir():
            child.unlink()
        self.path.rmdir()


class FakeRapl:
    """A powercap tree under ``root`` (the directory must exist)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def add_zone(
        self,
        zone: str,
        name: str,
        *,
        energy_uj: int = 0,
        max_energy_range_uj: int = DEFAULT_RANGE_UJ,
        readable: bool = True,
    ) -> FakeRaplZone:
        """Create zone directory ``zone`` (e.g. ``intel-rapl:0:1``) named ``name``."""
        path = self.root / zone
        path.mkdir()
        (path / "name").write_text(f"{name}\n")
        (path / "energy_uj").write_text(f"{energy_uj}\n")
        (path / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        (path / "enabled").write_text("1\n")
        if not readable:
            (path / "energy_uj").chmod(0o200)
        return FakeRaplZone(path, max_energy_range_uj)

    def add_control_type(self) -> None:
        """The ``intel-rapl`` control-type directory that sits next to the zones."""
        (self.root / "intel-rapl").mkdir(exist_ok=True)
        (self.root / "intel-rapl" / "enabled").write_text("1\n")


__all__ = ["DEFAULT_RANGE_UJ", "FakeRapl", "FakeRaplZone"]
