"""Fixtures for the fault tests: a PostgreSQL cluster of the test's own (never the shared one),
and a tiny tmpfs for a spool that runs out of space."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.pipeline.support import free_port


@dataclass
class Cluster:
    """A PostgreSQL cluster in a temporary directory, on 127.0.0.1:``port``."""

    bin_dir: Path
    data_dir: Path
    port: int
    as_user: list[str]  # command prefix running as the cluster's owner

    @property
    def admin_conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=40 -c shared_buffers=16MB"
        )
        self._ctl("-w", "-t", "60", "-l", str(self.data_dir / "server.log"), "-o", options, "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin_conninfo, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: no shutdown checkpoint, like a crash)."""
        self._ctl("-w", "-t", "60", "-m", mode, "stop")

    def running(self) -> bool:
        r = subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            timeout=30,
        )
        return r.returncode == 0


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        which = shutil.which("initdb")
        assert which, "PostgreSQL server binaries (initdb) are not installed"
        return Path(which).parent
    return Path(found[-1]).parent


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    """A fresh, running PostgreSQL cluster owned by this test; stopped and deleted after it.

    initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    """
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="wl-pg-cluster-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")  # present wherever the server is installed
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    cluster = Cluster(bin_dir, data, free_port(), as_user)
    try:
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            if data.exists() and cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tiny_fs() -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for this test (root only), unmounted after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root; run the fault tests as root")
    where = Path(tempfile.mkdtemp(prefix="wl-tinyfs-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        with contextlib.suppress(OSError):
            where.rmdir()
