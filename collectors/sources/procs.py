"""Which container a process on a device belongs to, from ``/proc/<pid>/cgroup``.

GPU drivers list the processes using each device (NVML compute processes, AMD SMI process
list). Their cgroup path names the container (Docker ``docker-<id>.scope``, containerd
``cri-containerd-<id>.scope``, CRI-O ``crio-<id>.scope``, or a bare 64-hex-digit component),
which is how a device is mapped to the serving container or Kubernetes pod. The procfs root is
a constructor argument so tests can build one in a temporary directory.
"""

from __future__ import annotations

import re
from pathlib import Path

_CONTAINER_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_of(pid: int, procfs_root: Path = Path("/proc")) -> str | None:
    """The container id of process ``pid``, or None (not in a container, gone, unreadable)."""
    try:
        text = (procfs_root / str(pid) / "cgroup").read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        path = line.rsplit(":", 1)[-1]
        match = _CONTAINER_ID.search(path)
        if match:
            return match.group(1)
    return None


__all__ = ["container_id_of"]
