"""One hardware identity from whatever a device reports: name strings, PCI device ids, memory.

Real libraries name the same part differently. NVML and DCGM report ``NVIDIA H100 80GB HBM3``
for an H100 SXM5 (older drivers drop the ``NVIDIA`` prefix or say ``Tesla``), AMD SMI reports a
market name such as ``AMD Instinct MI300X`` (rocm-smi adds ``OAM`` or ``(MCM)``), hl-smi names a
Gaudi 3 OAM ``HL-325L``, JAX names TPUs ``TPU v5 lite``, and sysfs only gives the PCI device id
(``/sys/bus/pci/devices/*/device``, ``0x2330``). :func:`resolve` maps all of them to one key, the
hardware catalog's where the catalog has the part (``catalog/data/hardware.toml``); a catalog
key, name or alias (``H100`` for the SXM part) matches exactly, ignoring case. A name nothing here
knows stays unknown: it is stored as reported and never matched to a near neighbour (an H20 is not
an H200).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

#: PCI vendor ids.
PCI_VENDOR_NVIDIA = 0x10DE
PCI_VENDOR_AMD = 0x1002


@dataclass(frozen=True)
class Part:
    """A hardware part this module knows: its key, vendor and display name."""

    key: str
    vendor: str
    name: str


_PARTS = {
    p.key: p
    for p in (
        Part("H100-SXM", "nvidia", "NVIDIA H100 SXM5 80GB"),
        Part("H100-PCIe", "nvidia", "NVIDIA H100 PCIe 80GB"),
        Part("H100-NVL", "nvidia", "NVIDIA H100 NVL 94GB"),
        Part("H200", "nvidia", "NVIDIA H200 SXM 141GB"),
        Part("H200-NVL", "nvidia", "NVIDIA H200 NVL 141GB"),
        Part("H20", "nvidia", "NVIDIA H20 96GB"),
        Part("B200", "nvidia", "NVIDIA B200 180GB"),
        Part("GB200", "nvidia", "NVIDIA GB200 (per B200 GPU in a GB200 NVL72) 186GB"),
        Part("A100-80GB-SXM", "nvidia", "NVIDIA A100 SXM4 80GB"),
        Part("A100-40GB-SXM", "nvidia", "NVIDIA A100 SXM4 40GB"),
        Part("A100-80GB-PCIe", "nvidia", "NVIDIA A100 PCIe 80GB"),
        Part("A100-40GB-PCIe", "nvidia", "NVIDIA A100 PCIe 40GB"),
        Part("L4", "nvidia", "NVIDIA L4 24GB"),
        Part("L40S", "nvidia", "NVIDIA L40S 48GB"),
        Part("A10G", "nvidia", "NVIDIA A10G 24GB"),
        Part("MI300X", "amd", "AMD Instinct MI300X 192GB"),
        Part("MI325X", "amd", "AMD Instinct MI325X 256GB"),
        Part("MI355X", "amd", "AMD Instinct MI355X 288GB"),
        Part("MI250X", "amd", "AMD Instinct MI250X 128GB"),
        Part("MI210", "amd", "AMD Instinct MI210 64GB"),
        Part("Gaudi3", "intel", "Intel Gaudi 3 HL-325L OAM 128GB"),
        Part("TPU-v5e", "google", "Google Cloud TPU v5e"),
        Part("TPU-v5p", "google", "Google Cloud TPU v5p"),
        Part("TPU-v6e", "google", "Google Cloud TPU v6e (Trillium)"),
        Part("Inferentia2", "aws", "AWS Inferentia2"),
        Part("Trainium2", "aws", "AWS Trainium2"),
    )
}

#: Name rules, tried in order on the normalised name (lower case, ``-``/``_``/``/`` as spaces,
#: vendor words dropped). Each pattern must match the whole name, so an unknown suffix keeps
#: a name unknown instead of matching a neighbour.
_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"h100 (sxm5? )?(80gb )?(hbm3|sxm5?)( 80gb)?", "H100-SXM"),
    (r"h100 (80gb )?pcie( 80gb)?", "H100-PCIe"),
    (r"h100 nvl( 94gb)?", "H100-NVL"),
    (r"h200( sxm)?( 141gb)?( hbm3e)?", "H200"),
    (r"h200 nvl( 141gb)?", "H200-NVL"),
    (r"h20( 96gb)?( hbm3)?", "H20"),
    (r"b200( sxm6?)?( 180gb)?( hbm3e)?", "B200"),
    (r"gb200( nvl72)?( 186gb| 192gb)?( hbm3e)?", "GB200"),
    (r"a100 (sxm4 80gb|80gb sxm4?|sxm4? 80gb)", "A100-80GB-SXM"),
    (r"a100 (sxm4 40gb|40gb sxm4?|sxm4? 40gb)", "A100-40GB-SXM"),
    (r"a100 (80gb pcie|pcie 80gb)", "A100-80GB-PCIe"),
    (r"a100 (40gb pcie|pcie 40gb)", "A100-40GB-PCIe"),
    (r"l4( 24gb)?", "L4"),
    (r"l40s( 48gb)?", "L40S"),
    (r"a10g( 24gb)?", "A10G"),
    (r"mi300x( 192gb)?( hbm3)?", "MI300X"),
    (r"mi325x( 256gb)?( hbm3e)?", "MI325X"),
    (r"mi355x( 288gb)?( hbm3e)?", "MI355X"),
    (r"mi250x( mi250)?( 128gb)?", "MI250X"),
    (r"mi210( 64gb)?", "MI210"),
    (r"(gaudi ?3|hl ?325l?)( oam)?( 128gb)?", "Gaudi3"),  # hl-smi: "HL-325L"
    (r"(cloud )?tpu ?v5 ?(e|lite)( ?pod)?( ?slice)?", "TPU-v5e"),  # JAX: "TPU v5 lite"
    (r"(cloud )?tpu ?v5p?( ?slice)?", "TPU-v5p"),  # JAX: "TPU v5"
    (r"(cloud )?tpu ?v6 ?(e|lite)( ?slice)?|trillium", "TPU-v6e"),  # JAX: "TPU v6 lite"
    (r"inferentia ?2|inf2", "Inferentia2"),
    (r"trainium ?2|trn2", "Trainium2"),
)
#: Words that name the vendor, the product line or the package, never the part.
_NOISE = re.compile(
    r"\b(nvidia|tesla|amd|instinct|oam|mcm|ac|mba|accelerator|gpu|intel|habana|google|aws)\b|[()]"
)

#: (PCI vendor id, PCI device id) -> part key.
_PCI_IDS = {
    (PCI_VENDOR_NVIDIA, 0x2330): "H100-SXM",
    (PCI_VENDOR_NVIDIA, 0x2331): "H100-PCIe",
    (PCI_VENDOR_NVIDIA, 0x2321): "H100-NVL",
    (PCI_VENDOR_NVIDIA, 0x2335): "H200",
    (PCI_VENDOR_NVIDIA, 0x233B): "H200-NVL",
    (PCI_VENDOR_NVIDIA, 0x2329): "H20",
    (PCI_VENDOR_NVIDIA, 0x2901): "B200",
    (PCI_VENDOR_NVIDIA, 0x20B0): "A100-40GB-SXM",
    (PCI_VENDOR_NVIDIA, 0x20B2): "A100-80GB-SXM",
    (PCI_VENDOR_NVIDIA, 0x20F1): "A100-40GB-PCIe",
    (PCI_VENDOR_NVIDIA, 0x20B5): "A100-80GB-PCIe",
    (PCI_VENDOR_NVIDIA, 0x27B8): "L4",
    (PCI_VENDOR_NVIDIA, 0x26B9): "L40S",
    (PCI_VENDOR_NVIDIA, 0x2237): "A10G",
    (PCI_VENDOR_AMD, 0x74A1): "MI300X",
    (PCI_VENDOR_AMD, 0x74A5): "MI325X",
    (PCI_VENDOR_AMD, 0x740C): "MI250X",
    (PCI_VENDOR_AMD, 0x740F): "MI210",
}


@dataclass(frozen=True)
class HardwareIdentity:
    """What a reported device is.

    Attributes:
        reported: The name as the device reported it (kept as is).
        key: The part's key (the catalog's where it has the part), or None when unknown.
        vendor: ``nvidia``, ``amd``, ``intel``, ``google`` or ``aws`` when known.
        name: A display name: the part's, or the reported name when unknown.
        in_catalog: Whether the hardware catalog (roofline, idle and TDP figures) has the part.
        matched_by: ``catalog``, ``name`` or ``pci`` (what identified it), None when unknown.
    """

    reported: str
    key: str | None
    vendor: str | None
    name: str
    in_catalog: bool
    matched_by: str | None

    @property
    def known(self) -> bool:
        """Whether the part was identified."""
        return self.key is not None

    @property
    def label(self) -> str:
        """How pages show it: the part's name, or ``unknown (<reported>)``."""
        return self.name if self.known else f"unknown ({self.reported or 'no name'})"


def _normalise(name: str) -> str:
    text = re.sub(r"[-_/,]+", " ", name.lower())
    text = _NOISE.sub(" ", text)
    return " ".join(text.split())


@functools.lru_cache(maxsize=1)
def _catalog() -> dict[str, str]:
    """Catalog key -> catalog display name (empty when the catalog cannot be read)."""
    try:
        from wattledger.catalog.specs import load_catalog

        devices = load_catalog().devices
    except Exception:  # noqa: BLE001 - identity must work without the catalog
        return {}
    return {str(k): str(getattr(v, "name", k)) for k, v in devices.items()}


@functools.lru_cache(maxsize=1)
def _catalog_names() -> dict[str, str]:
    """Lower-cased catalog key, name or alias -> catalog key (empty without the catalog)."""
    try:
        from wattledger.catalog.specs import load_catalog

        devices = load_catalog().devices
    except Exception:  # noqa: BLE001 - identity must work without the catalog
        return {}
    names: dict[str, str] = {}
    for key, spec in devices.items():
        for n in (key, spec.name, *spec.aliases):
            names.setdefault(n.strip().lower(), key)
    return names


def parse_pci_id(value: int | str | None) -> tuple[int | None, int | None]:
    """(vendor id, device id) from an NVML ``pciDeviceId`` (``device << 16 | vendor``), a
    sysfs ``0x2330`` string or a plain device id; (None, None) when it cannot be read."""
    if value is None or value == "":
        return None, None
    try:
        n = int(value, 0) if isinstance(value, str) else int(value)
    except ValueError:
        return None, None
    if n > 0xFFFF:
        return n & 0xFFFF, (n >> 16) & 0xFFFF
    return None, n


def resolve(
    name: str | None,
    *,
    pci_device_id: int | str | None = None,
    pci_vendor_id: int | None = None,
    memory_bytes: float | None = None,
) -> HardwareIdentity:
    """The identity of a device from what it reports.

    Args:
        name: The reported name (NVML/DCGM ``name``/``modelName``, AMD SMI ``market_name``,
            sysfs ``product_name``, a catalog key or a label).
        pci_device_id: NVML's combined ``pciDeviceId`` or the bare PCI device id; used when
            the name does not identify the part.
        pci_vendor_id: PCI vendor id when ``pci_device_id`` is bare (default: either vendor).
        memory_bytes: Total memory, to tell an A100 40 GB from an 80 GB when the name does not.
    """
    reported = (name or "").strip()
    catalog = _catalog()
    key = _catalog_names().get(reported.lower()) if reported else None
    if key is not None and key in catalog:  # a catalog key, the catalog's name or an alias
        part = _PARTS.get(key)
        vendor = part.vendor if part else None
        return HardwareIdentity(reported, key, vendor, catalog[key], True, "catalog")
    key = _by_name(_normalise(reported), memory_bytes)
    how = "name"
    if key is None:
        key, how = _by_pci(pci_device_id, pci_vendor_id), "pci"
    if key is None:
        return HardwareIdentity(reported, None, None, reported, False, None)
    part = _PARTS[key]
    return HardwareIdentity(reported, key, part.vendor, part.name, key in catalog, how)


def _by_name(text: str, memory_bytes: float | None) -> str | None:
    if not text:
        return None
    for pattern, key in _NAME_RULES:
        if re.fullmatch(pattern, text):
            return key
    if memory_bytes and re.fullmatch(r"a100( sxm4?)?", text):  # "A100-SXM4": size by memory
        return "A100-80GB-SXM" if memory_bytes > 60e9 else "A100-40GB-SXM"
    if memory_bytes and re.fullmatch(r"a100 pcie", text):
        return "A100-80GB-PCIe" if memory_bytes > 60e9 else "A100-40GB-PCIe"
    return None


def _by_pci(device_id: int | str | None, vendor_id: int | None) -> str | None:
    vendor, device = parse_pci_id(device_id)
    vendor = vendor if vendor is not None else vendor_id
    if device is None:
        return None
    if vendor is not None:
        return _PCI_IDS.get((vendor, device))
    found = {k for (v, d), k in _PCI_IDS.items() if d == device}
    return found.pop() if len(found) == 1 else None


def catalog_key(name: str | None) -> str | None:
    """The hardware catalog's key for a reported name, or None when the catalog lacks it."""
    identity = resolve(name)
    return identity.key if identity.in_catalog else None


def _catalog_watts(name: str | None, field: str) -> float | None:
    key = catalog_key(name)
    if key is None:
        return None
    from wattledger.catalog.specs import load_catalog

    spec = load_catalog().devices.get(key)
    figure = getattr(spec, field, None)
    value = getattr(figure, "value", figure)
    return float(value) if isinstance(value, int | float) and value >= 0 else None


@functools.lru_cache(maxsize=512)
def catalog_idle_power_w(name: str | None) -> float | None:
    """The catalog's idle power (W) of a reported part, None when the catalog lacks it."""
    return _catalog_watts(name, "idle_power_w")


@functools.lru_cache(maxsize=512)
def catalog_tdp_w(name: str | None) -> float | None:
    """The catalog's board power limit (W) of a reported part, None when the catalog lacks it."""
    return _catalog_watts(name, "tdp_w")
