"""Power modeled from utilisation, for accelerators that expose no power reading.

Google TPUs and AWS Inferentia/Trainium report how busy they are (TPU duty cycle, NeuronCore
utilisation) but no watts. Their power is modeled linearly between the hardware catalog's idle
and board-power figures (``catalog/data/hardware.toml``)::

    power_w = idle_power_w + (tdp_w - idle_power_w) * utilization_ratio

and integrated over time into energy. Readings are **always** ``method="modeled"`` and their
device carries :attr:`~wattledger.collectors.sources.base.DeviceInfo.uncertainty_ratio`, the
half-width of the range the figure is taken to lie in:

* ±25 % (:data:`RANGE_GUESSED`) when the catalog marks the TDP or the idle figure
  ``guess = true``, which is every TPU and Neuron part today: no vendor publishes their power.
* ±15 % (:data:`RANGE_PUBLISHED`) when both figures are published. Even then the model is
  rough: busy time is not work done, so a memory-bound decode at 100 % duty cycle draws less
  than the board power it is modeled at.

These widths are a stated convention, not a fitted error: nothing measured on these parts was
available to fit against. They say how far to trust the number, and reports can show the range.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Relative range of a figure modeled from published idle and TDP figures.
RANGE_PUBLISHED = 0.15
#: Relative range when the catalog's idle or TDP figure is an assumption (``guess = true``).
RANGE_GUESSED = 0.25


@dataclass(frozen=True, slots=True)
class PowerFigures:
    """The catalog's power figures of one part, and the range a model built on them carries.

    Attributes:
        key: The catalog key (``TPU-v6e``, ``Inferentia2``).
        name: The catalog's display name.
        vendor: ``google``, ``aws``, ...
        tdp_w: Board power limit, watts.
        idle_power_w: Idle power, watts.
        guessed: Whether either figure is marked ``guess = true``.
    """

    key: str
    name: str
    vendor: str
    tdp_w: float
    idle_power_w: float
    guessed: bool

    @property
    def uncertainty_ratio(self) -> float:
        """Half-width of the modeled figure's range, relative (0.25 = ±25 %)."""
        return RANGE_GUESSED if self.guessed else RANGE_PUBLISHED

    def power_w(self, utilization_ratio: float) -> float:
        """Modeled power at ``utilization_ratio`` (clamped to 0..1), watts."""
        u = min(max(utilization_ratio, 0.0), 1.0)
        return self.idle_power_w + (self.tdp_w - self.idle_power_w) * u


@functools.lru_cache(maxsize=64)
def catalog_power_figures(reported: str) -> PowerFigures | None:
    """The catalog's idle and TDP figures for a part named as its tool reports it.

    ``reported`` matches a catalog key, display name or alias, ignoring case (``TPU v6e``,
    ``inferentia2``, ``trainium2``). None when the catalog does not have the part or cannot be
    read: then nothing can be modeled and the caller says so.
    """
    try:
        from wattledger.catalog.specs import load_catalog

        devices = load_catalog().devices
    except Exception:  # noqa: BLE001 - a broken catalog must not break the collector
        logger.exception("The hardware catalog cannot be read; nothing can be modeled.")
        return None
    want = reported.strip().lower()
    for key, spec in devices.items():
        names = {key, spec.name, *spec.aliases}
        if want in {n.strip().lower() for n in names}:
            return PowerFigures(
                key=key,
                name=spec.name,
                vendor=spec.vendor,
                tdp_w=float(spec.tdp_w.value),
                idle_power_w=float(spec.idle_power_w.value),
                guessed=bool(spec.tdp_w.guess or spec.idle_power_w.guess),
            )
    return None


__all__ = [
    "RANGE_GUESSED",
    "RANGE_PUBLISHED",
    "PowerFigures",
    "catalog_power_figures",
]
