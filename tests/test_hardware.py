"""The hardware-identity resolver against the exact strings real libraries report.

Names are as NVML's ``nvmlDeviceGetName`` / DCGM's ``modelName`` print them on current
drivers (``NVIDIA ...``), on older drivers (no prefix, or ``Tesla``), as AMD SMI's
``market_name`` and rocm-smi's card series print them, and PCI ids as NVML's combined
``pciDeviceId`` (device << 16 | 0x10de) and sysfs ``device`` files give them.
"""

from __future__ import annotations

import pytest

from wattledger.hardware import catalog_idle_power_w, catalog_key, parse_pci_id, resolve

NAMES = [
    # (reported name, key, in the catalog)
    ("NVIDIA H100 80GB HBM3", "H100-SXM", True),
    ("H100 80GB HBM3", "H100-SXM", True),
    ("NVIDIA H100 PCIe", "H100-PCIe", True),
    ("NVIDIA H100 NVL", "H100-NVL", True),
    ("NVIDIA H200", "H200", True),
    ("NVIDIA H200 NVL", "H200-NVL", False),
    ("NVIDIA H20", "H20", False),
    ("NVIDIA B200", "B200", True),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM", True),
    ("NVIDIA A100-SXM4-40GB", "A100-40GB-SXM", True),
    ("A100-SXM4-40GB", "A100-40GB-SXM", True),
    ("Tesla A100-SXM4-40GB", "A100-40GB-SXM", True),
    ("NVIDIA A100 80GB PCIe", "A100-80GB-PCIe", False),
    ("NVIDIA A100-PCIE-40GB", "A100-40GB-PCIe", False),
    ("NVIDIA L4", "L4", True),
    ("NVIDIA L40S", "L40S", True),
    ("NVIDIA A10G", "A10G", False),
    ("AMD Instinct MI300X", "MI300X", True),
    ("AMD Instinct MI300X OAM", "MI300X", True),
    ("AMD Instinct MI325X", "MI325X", True),
    ("AMD Instinct MI250X", "MI250X", False),
    ("AMD INSTINCT MI250X (MCM) OAM AC MBA", "MI250X", False),
    ("AMD Instinct MI210", "MI210", False),
    # the catalog's own keys and names resolve to themselves
    ("H100-SXM", "H100-SXM", True),
    ("NVIDIA H100 SXM5 80GB", "H100-SXM", True),
    ("MI300X", "MI300X", True),
    ("l4", "L4", True),
]


@pytest.mark.parametrize(("reported", "key", "in_catalog"), NAMES)
def test_real_names_resolve(reported: str, key: str, in_catalog: bool) -> None:
    identity = resolve(reported)
    assert identity.key == key, reported
    assert identity.in_catalog is in_catalog
    assert identity.reported == reported  # stored as reported
    assert identity.vendor == ("amd" if key.startswith("MI") else "nvidia")
    assert (catalog_key(reported) == key) is in_catalog


PCI = [
    # (NVML pciDeviceId or sysfs string, vendor id when bare, key)
    ((0x2330 << 16) | 0x10DE, None, "H100-SXM"),
    ((0x2331 << 16) | 0x10DE, None, "H100-PCIe"),
    ((0x2321 << 16) | 0x10DE, None, "H100-NVL"),
    ((0x2335 << 16) | 0x10DE, None, "H200"),
    ((0x2329 << 16) | 0x10DE, None, "H20"),
    ((0x2901 << 16) | 0x10DE, None, "B200"),
    ((0x20B0 << 16) | 0x10DE, None, "A100-40GB-SXM"),
    ((0x20B2 << 16) | 0x10DE, None, "A100-80GB-SXM"),
    ((0x20F1 << 16) | 0x10DE, None, "A100-40GB-PCIe"),
    ((0x20B5 << 16) | 0x10DE, None, "A100-80GB-PCIe"),
    ((0x27B8 << 16) | 0x10DE, None, "L4"),
    ((0x26B9 << 16) | 0x10DE, None, "L40S"),
    ((0x2237 << 16) | 0x10DE, None, "A10G"),
    ("0x74a1", 0x1002, "MI300X"),
    ("0x74a5", 0x1002, "MI325X"),
    ("0x740c", 0x1002, "MI250X"),
    ("0x740f", 0x1002, "MI210"),
    ("0x2330", None, "H100-SXM"),  # sysfs, vendor unknown: the id alone is unambiguous
]


@pytest.mark.parametrize(("pci", "vendor", "key"), PCI)
def test_pci_ids_resolve_when_the_name_does_not(
    pci: int | str, vendor: int | None, key: str
) -> None:
    identity = resolve("NVIDIA Graphics Device", pci_device_id=pci, pci_vendor_id=vendor)
    assert identity.key == key
    assert identity.matched_by == "pci"
    assert identity.reported == "NVIDIA Graphics Device"


def test_a_known_name_wins_over_a_pci_id() -> None:
    assert resolve("NVIDIA L4", pci_device_id=(0x2330 << 16) | 0x10DE).key == "L4"


def test_memory_tells_a100_sizes_apart() -> None:
    assert resolve("NVIDIA A100-SXM4", memory_bytes=85_899_345_920).key == "A100-80GB-SXM"
    assert resolve("NVIDIA A100-SXM4", memory_bytes=42_949_672_960).key == "A100-40GB-SXM"
    assert resolve("NVIDIA A100-SXM4").key is None  # no size: not guessed


@pytest.mark.parametrize(
    "reported",
    [
        "NVIDIA GeForce RTX 4090",
        "NVIDIA H100",  # which H100? not guessed
        "NVIDIA H2000",
        "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
        "AMD Instinct MI300A",
        "Intel(R) Data Center GPU Max 1550",
        "",
        "mystery accelerator",
    ],
)
def test_unknown_names_stay_unknown(reported: str) -> None:
    identity = resolve(reported)
    assert identity.key is None and not identity.in_catalog and identity.matched_by is None
    assert identity.reported == reported
    assert identity.label.startswith("unknown")


def test_near_neighbours_are_not_confused() -> None:
    assert resolve("NVIDIA H20").key == "H20"
    assert resolve("NVIDIA H200").key == "H200"
    assert resolve("NVIDIA L40S").key == "L40S"
    assert resolve("NVIDIA L4").key == "L4"


def test_pci_id_parsing() -> None:
    assert parse_pci_id((0x2330 << 16) | 0x10DE) == (0x10DE, 0x2330)
    assert parse_pci_id("0x74a1") == (None, 0x74A1)
    assert parse_pci_id("garbage") == (None, None)
    assert parse_pci_id(None) == (None, None)


def test_catalog_idle_power_for_real_names() -> None:
    from wattledger.catalog.specs import load_catalog

    expected = load_catalog().devices["H100-SXM"].idle_power_w.value
    assert catalog_idle_power_w("NVIDIA H100 80GB HBM3") == pytest.approx(expected)
    assert catalog_idle_power_w("NVIDIA A10G") is None  # known part, not in the catalog
    assert catalog_idle_power_w("mystery") is None


def test_roofline_weights_apply_to_a_real_device_name() -> None:
    from wattledger.analytics.settings import AnalyticsSettings
    from wattledger.analytics.weights import token_weights

    settings = AnalyticsSettings()
    real = token_weights(settings, "NVIDIA H100 80GB HBM3", "llama-3.1-8b", "bf16")
    key = token_weights(settings, "H100-SXM", "llama-3.1-8b", "bf16")
    assert real == key and real[2] == "roofline"
    assert token_weights(settings, "NVIDIA H20", "llama-3.1-8b", "bf16")[2] == "default"


def test_fleet_table_shows_identity_or_unknown() -> None:
    import pandas as pd

    from wattledger.dashboard.frames_ops import device_table

    names = ["NVIDIA H100 80GB HBM3", "NVIDIA A10G", "NVIDIA H100", "Fake GPU"]
    zeros = [0.0] * len(names)
    summary = pd.DataFrame(
        {
            "device_id": [f"d{i}" for i in range(len(names))],
            "hardware_model": names,
            "node": ["n"] * len(names),
            "device_energy_measured_j": zeros,
            "device_energy_modeled_j": zeros,
            "attributed_j": zeros,
            "idle_j": zeros,
            "unallocated_idle_j": zeros,
            "active_s": zeros,
            "mean_power_w": zeros,
            "mean_utilization_ratio": zeros,
            "requests": [0] * len(names),
            "counter_hours": [1] * len(names),
            "power_hours": [0] * len(names),
            "modeled_hours": [0] * len(names),
            "hours": [1] * len(names),
        }
    )
    table = device_table(summary)
    assert table["Hardware"].tolist() == names  # as reported
    assert table["Identified as"].tolist() == [
        "H100-SXM",
        "A10G (not in catalog)",
        "unknown",
        "unknown",
    ]
