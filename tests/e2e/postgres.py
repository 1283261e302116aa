"""A private PostgreSQL cluster on 127.0.0.1 for the tracking-server tier, stopped afterwards.

``initdb`` into a temporary folder and ``pg_ctl start`` on a free port, listening on 127.0.0.1
and a socket in that folder only. PostgreSQL refuses to run as root: when the tests run as root
(CI containers), the cluster runs as the ``postgres`` user the Debian package creates.
``make test-postgres`` installs the package and ``psycopg`` (SQLAlchemy's default PostgreSQL driver) first.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.e2e.conftest import free_port


def pg_bin() -> Path | None:
    """The folder of ``initdb``/``pg_ctl`` (PATH first, then Debian's versioned folders)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # a link on PATH: its folder has createdb too
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(_as_owner(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _as_owner(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextlib.contextmanager
def running_postgres(database: str = "mlflow") -> Iterator[str]:
    """A cluster in a fresh folder of /tmp with an empty ``database``; yields its SQLAlchemy URI.

    Not under pytest's ``tmp_path``: that folder is private to root, and the server's user must
    reach its data folder.
    """
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: run make test-postgres (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="promote-pg-"))
    data = root / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c max_connections=200 -c fsync=off"
    log = data / "server.log"
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start"])
    try:
        _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database])
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(
            _as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
