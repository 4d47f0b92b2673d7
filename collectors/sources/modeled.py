"""Modeled energy for hardware without sensors: tokens × published joules per token.

The catalog (``data/energy_catalog.json``) holds measured energy per output token of open
models on A100 and H100 GPUs from the ML.ENERGY leaderboard v2 (whole-GPU steady-state
energy of the tensor-parallel group divided by output tokens; median over batch sizes, with
the range). :class:`ModeledSource` turns the generated-token counters of a serving engine
(scraped by :class:`~wattledger.collectors.sources.prometheus.PrometheusSource`) into a
cumulative energy that is **always** labelled ``method="modeled"``; idle energy is not
modeled. :class:`EnergyCatalog` is the same table for code that models per request (e.g. a
hosted API, whose traffic the collector never sees).

A modeled device is written ``<catalog model>@<hardware>[#<served model name>]``, e.g.
``meta-llama/Meta-Llama-3.1-8B-Instruct@H100#llama-8b``. Without ``#...`` the engine's
``model_name`` must match the catalog model (case-insensitively, ignoring the organisation
and a ``Meta-`` prefix).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from importlib import resources

from wattledger.collectors.sources.base import DeviceInfo, EnergyReading, OnceLogger
from wattledger.collectors.sources.prometheus import EngineStats
from wattledger.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """Published energy per output token of one model on one kind of hardware.

    Attributes:
        llm_model: Model id (Hugging Face style).
        hardware: Hardware key, e.g. ``H100-SXM-80GB`` (the whole tensor-parallel group).
        task: Workload of the measurement (``chat``, ``code``).
        tensor_parallel: GPUs in the measured group.
        joules_per_output_token: Median over measured batch sizes, J/token.
        joules_per_output_token_min: Lowest measured, J/token.
        joules_per_output_token_max: Highest measured, J/token.
        configurations: How many measured configurations.
    """

    llm_model: str
    hardware: str
    task: str
    tensor_parallel: int
    joules_per_output_token: float
    joules_per_output_token_min: float
    joules_per_output_token_max: float
    configurations: int


def normalize_model(name: str) -> str:
    """``meta-llama/Meta-Llama-3.1-8B-Instruct`` -> ``llama-3.1-8b-instruct``."""
    short = name.strip().lower().rsplit("/", 1)[-1]
    return short.removeprefix("meta-")


class EnergyCatalog:
    """The table of published joules per output token."""

    def __init__(self, entries: Sequence[CatalogEntry], source: str = "") -> None:
        self.entries = list(entries)
        self.source = source

    @classmethod
    def load(cls) -> EnergyCatalog:
        """The catalog shipped with wattledger."""
        text = (resources.files(__package__) / "data" / "energy_catalog.json").read_text()
        doc = json.loads(text)
        return cls([CatalogEntry(**e) for e in doc["entries"]], doc.get("source", ""))

    def lookup(self, llm_model: str, hardware: str, task: str | None = None) -> CatalogEntry:
        """The entry for ``llm_model`` on ``hardware`` (a prefix such as ``H100`` is enough).

        Raises:
            ConfigError: no such entry; the message lists the closest names.
        """
        want_model, want_hw = normalize_model(llm_model), hardware.strip().upper()
        hits = [
            e
            for e in self.entries
            if normalize_model(e.llm_model) == want_model
            and e.hardware.upper().startswith(want_hw)
            and (task is None or e.task == task)
        ]
        if hits:
            return hits[0]
        models = sorted({e.llm_model for e in self.entries})
        close = get_close_matches(llm_model, models, n=3, cutoff=0.4)
        hardware_keys = ", ".join(sorted({e.hardware for e in self.entries}))
        raise ConfigError(
            f"No published energy per token for {llm_model!r} on {hardware!r}.",
            hint=(f"Closest models: {', '.join(close)}. " if close else "")
            + f"Hardware keys: {hardware_keys}. See docs/collector.md#modeled-energy.",
        )


@dataclass
class _Modeled:
    info: DeviceInfo
    entry: CatalogEntry
    served: str | None
    tokens: float = 0.0
    last_total: dict[tuple[str, str], float] | None = None
    last_j: float = 0.0
    last_ns: int | None = None


_VENDORS = {"A100": "nvidia", "H100": "nvidia", "B200": "nvidia", "MI300": "amd", "MI250": "amd"}


def parse_modeled_spec(spec: str, catalog: EnergyCatalog) -> tuple[CatalogEntry, str | None]:
    """``<model>@<hardware>[#<served name>]`` -> (catalog entry, served name)."""
    body, _, served = spec.partition("#")
    model, at, hardware = body.rpartition("@")
    if not at or not model or not hardware:
        raise ConfigError(
            f"Modeled source {spec!r} is not <model>@<hardware>[#<served model name>].",
            hint="For example: --source 'modeled=meta-llama/Meta-Llama-3.1-8B-Instruct@H100'.",
        )
    return catalog.lookup(model, hardware), (served or None)


class ModeledSource:
    """Energy modeled from generated tokens; readings are always ``method="modeled"``.

    Args:
        specs: Devices as ``<model>@<hardware>[#<served model name>]``.
        host: Host name used in device ids (``<host>:modeled:<index>``).
        catalog: The table to use (default: the shipped one).
        clock_ns: Monotonic clock.

    Raises:
        ConfigError: a spec is malformed or not in the catalog.
    """

    name = "modeled"

    def __init__(
        self,
        specs: Sequence[str],
        *,
        host: str | None = None,
        catalog: EnergyCatalog | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.catalog = catalog or EnergyCatalog.load()
        self._clock_ns = clock_ns
        self._once = OnceLogger(logger)
        host = host or socket.gethostname()
        self._devices: list[_Modeled] = []
        for index, spec in enumerate(specs):
            entry, served = parse_modeled_spec(spec, self.catalog)
            vendor = next((v for k, v in _VENDORS.items() if entry.hardware.startswith(k)), "")
            info = DeviceInfo(
                device_id=f"{host}:modeled:{index}",
                source=self.name,
                hw_type="gpu",
                vendor=vendor or "unknown",
                model=entry.hardware,
                name=f"modeled-{normalize_model(entry.llm_model)}",
                index=index,
            )
            self._devices.append(_Modeled(info, entry, served))

    def devices(self) -> Sequence[DeviceInfo]:
        """One device per spec."""
        return [d.info for d in self._devices]

    def observe(self, stats: Sequence[EngineStats]) -> None:
        """Take the engines' latest token counters (called by the collector each cycle)."""
        for dev in self._devices:
            want = dev.served or dev.entry.llm_model
            matching = [
                s
                for s in stats
                if s.model is not None
                and s.generation_tokens is not None
                and (s.model == want or normalize_model(s.model) == normalize_model(want))
            ]
            if not matching:
                if stats:
                    self._once.log(
                        logging.WARNING,
                        (dev.info.device_id, "unmatched"),
                        "Modeled device %s: no engine reports tokens for model %r (seen: %s); "
                        "add '#<served model name>' to its spec.",
                        dev.info.device_id,
                        want,
                        ", ".join(sorted({str(s.model) for s in stats})),
                    )
                continue
            totals = {(s.endpoint, s.engine): float(s.generation_tokens or 0.0) for s in matching}
            if dev.last_total is not None:
                for key, total in totals.items():
                    previous = dev.last_total.get(key)
                    if previous is None:
                        continue
                    dev.tokens += total - previous if total >= previous else total
            dev.last_total = totals

    def read(self) -> list[EnergyReading]:
        """Cumulative modeled energy (tokens so far × J/token) and its rate as power."""
        t_ns = self._clock_ns()
        out = []
        for dev in self._devices:
            energy_j = dev.tokens * dev.entry.joules_per_output_token
            power_w = None
            if dev.last_ns is not None and t_ns > dev.last_ns:
                power_w = (energy_j - dev.last_j) / ((t_ns - dev.last_ns) / 1e9)
            dev.last_j, dev.last_ns = energy_j, t_ns
            out.append(
                EnergyReading(
                    device_id=dev.info.device_id,
                    energy_j=energy_j,
                    power_w=power_w,
                    monotonic_ns=t_ns,
                    method="modeled",
                )
            )
        return out

    def close(self) -> None:
        """Nothing to release."""


__all__ = [
    "CatalogEntry",
    "EnergyCatalog",
    "ModeledSource",
    "normalize_model",
    "parse_modeled_spec",
]
