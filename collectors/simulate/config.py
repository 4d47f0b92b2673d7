"""Fleet configuration: workloads, device pools, hosted routes and how traffic is split.

A fleet is a TOML file (``data/fleet-demo.toml`` is the default heterogeneous demo fleet)::

    [workloads.chat]                     # a workload class and where its requests come from
    trace = "conv"                       # a packaged Azure trace ("conv", "code") or a CSV path
    service = "chat-api"
    routes = { chat-h100 = 0.7, groq-70b = 0.3 }   # pool or hosted route -> share of traffic

    [pools.chat-h100]                    # identical self-hosted devices, one replica each
    hardware = "H100-SXM"
    count = 4
    llm_model = "llama-3.1-70b"
    quantization = "fp8"

    [hosted.groq-70b]                    # a hosted API route
    provider = "groq"
    llm_model = "llama-3.1-70b"

Loading checks every name against the catalogs and that every model fits its device, and
fails with a :class:`~wattledger.errors.ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wattledger.catalog.roofline import PerfModel
from wattledger.catalog.specs import Catalog, load_catalog
from wattledger.errors import ConfigError

#: The simulator's own data: the demo fleet, the replayed traces, the calibration tables.
DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_FLEET = DATA_DIR / "fleet-demo.toml"
#: Namespace of the stable device UUIDs (``hw.id``) the simulator gives its devices.
_DEVICE_NAMESPACE = uuid.UUID("6f1d2c3e-7a55-4d0b-9a51-3c5e0f9b2a10")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulationSettings(_Strict):
    """Shape of the load over time.

    Attributes:
        diurnal_amplitude: Relative swing of the request rate over a day (0 = flat).
        diurnal_peak_hour_utc: Hour of the day (UTC) with the most traffic.
        weekend_factor: Traffic on Saturday and Sunday relative to a weekday.
    """

    diurnal_amplitude: float = Field(default=0.5, ge=0, lt=1)
    diurnal_peak_hour_utc: float = Field(default=15.0, ge=0, lt=24)
    weekend_factor: float = Field(default=0.7, gt=0, le=2)


class SyntheticWorkload(_Strict):
    """A generated workload: Poisson arrivals in a daily window, lognormal token counts."""

    requests_per_hour: float = Field(gt=0)
    active_hours_utc: tuple[float, float] = (0.0, 24.0)
    input_tokens_median: float = Field(gt=0)
    input_tokens_sigma: float = Field(default=0.5, ge=0)
    input_tokens_max: int = Field(default=32000, gt=0)
    output_tokens_median: float = Field(gt=0)
    output_tokens_sigma: float = Field(default=0.5, ge=0)
    output_tokens_max: int = Field(default=4096, gt=0)


class WorkloadConfig(_Strict):
    """One workload class: its request source, its service and its traffic split."""

    trace: str | None = None
    synthetic: SyntheticWorkload | None = None
    service: str
    operation: str = "chat"
    routes: dict[str, float]

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadConfig:
        if (self.trace is None) == (self.synthetic is None):
            raise ValueError("give exactly one of 'trace' and 'synthetic'")
        if not self.routes or any(w < 0 for w in self.routes.values()):
            raise ValueError("'routes' needs at least one route with a non-negative share")
        if sum(self.routes.values()) <= 0:
            raise ValueError("the shares in 'routes' must not all be zero")
        return self


class PoolConfig(_Strict):
    """Identical self-hosted devices serving one model; each device is one replica."""

    hardware: str
    count: int = Field(default=1, ge=1, le=1024)
    node: str | None = None
    llm_model: str
    quantization: str = "bf16"
    engine: str = "vllm"
    energy_method: Literal["counter", "power"] | None = None
    power_source: str | None = None


class HostedConfig(_Strict):
    """A hosted API serving one model."""

    provider: str
    llm_model: str


class FleetConfig(_Strict):
    """A whole fleet: load shape, workload classes, pools and hosted routes."""

    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    workloads: dict[str, WorkloadConfig]
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    hosted: dict[str, HostedConfig] = Field(default_factory=dict)


class Device(_Strict):
    """One simulated accelerator (a replica of its pool)."""

    device_id: str
    pool: str
    index: int
    node: str
    hardware: str
    vendor: str
    power_source: str
    energy_method: Literal["counter", "power"]
    tdp_w: float
    idle_power_w: float


def load_fleet(path: Path | None = None, catalog: Catalog | None = None) -> FleetConfig:
    """Read, validate and cross-check a fleet file (default: the demo fleet).

    Raises:
        ConfigError: the file is missing or malformed, names something the catalogs do not
            know, or puts a model on a device it does not fit.
    """
    path = path or DEMO_FLEET
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise ConfigError(
            f"Fleet file {path} does not exist.",
            hint="Pass --fleet with a TOML file, or omit it for the demo fleet.",
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"Fleet file {path} is not valid TOML: {e}.") from e
    try:
        fleet = FleetConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"Fleet file {path} is invalid at '{where}': {err['msg']}.",
            hint=f"See docs/simulator.md#fleet-configuration and {DEMO_FLEET.name}.",
        ) from e
    check_fleet(fleet, catalog or load_catalog(), str(path))
    return fleet


def check_fleet(fleet: FleetConfig, catalog: Catalog, where: str = "fleet") -> None:
    """Cross-check names against the catalogs and memory fit; raise :class:`ConfigError`."""
    clash = set(fleet.pools) & set(fleet.hosted)
    if clash:
        raise ConfigError(f"{where}: '{sorted(clash)[0]}' is both a pool and a hosted route.")
    for name, pool in fleet.pools.items():
        perf = PerfModel.from_catalog(
            catalog, pool.hardware, pool.llm_model, pool.quantization, pool.engine
        )
        try:
            perf.check_fits()
        except ConfigError as e:
            raise ConfigError(f"{where}: pool '{name}': {e.message}", e.hint) from e
    for name, hosted in fleet.hosted.items():
        provider = catalog.providers.get(hosted.provider)
        if provider is None:
            raise ConfigError(
                f"{where}: hosted route '{name}' names unknown provider '{hosted.provider}'.",
                hint=f"Known: {', '.join(sorted(catalog.providers))}.",
            )
        if hosted.llm_model not in provider.models:
            raise ConfigError(
                f"{where}: provider '{hosted.provider}' does not serve '{hosted.llm_model}'.",
                hint=f"It serves: {', '.join(sorted(provider.models))}.",
            )
    for wname, workload in fleet.workloads.items():
        for route in workload.routes:
            if route not in fleet.pools and route not in fleet.hosted:
                raise ConfigError(
                    f"{where}: workload '{wname}' routes to '{route}', which is neither a "
                    "pool nor a hosted route.",
                    hint="Define it under [pools.NAME] or [hosted.NAME].",
                )


def fleet_devices(fleet: FleetConfig, catalog: Catalog) -> list[Device]:
    """Every device of every pool, with stable ids (``GPU-<uuid>`` like NVML reports)."""
    devices = []
    for name, pool in fleet.pools.items():
        spec = catalog.devices[pool.hardware]
        source = pool.power_source or spec.power_source
        method = pool.energy_method or ("power" if source == "prometheus" else "counter")
        for i in range(pool.count):
            uid = uuid.uuid5(_DEVICE_NAMESPACE, f"{name}/{i}")
            devices.append(
                Device(
                    device_id=f"GPU-{uid}",
                    pool=name,
                    index=i,
                    node=pool.node or f"{name}-node",
                    hardware=pool.hardware,
                    vendor=spec.vendor,
                    power_source=source,
                    energy_method=method,
                    tdp_w=spec.tdp_w.value,
                    idle_power_w=spec.idle_power_w.value,
                )
            )
    return devices
