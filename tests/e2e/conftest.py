"""A real `mlflow server` process on 127.0.0.1 for end-to-end tests; stopped afterwards. Also the
report tests' fake GitHub / Azure DevOps API (``fake_api``), for runs that alert or dispatch."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.report.conftest import fake_api  # noqa: F401 - a fixture


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def start_mlflow_server(
    root: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    backend: str | None = None,
) -> tuple[subprocess.Popen, str]:
    """Start an `mlflow server` (SQLite backend unless ``backend`` names another store, local
    artifacts under ``root``) on 127.0.0.1 and wait until it answers; the same ``root`` and
    ``port`` again restart it on the same store."""
    port = port or free_port()
    log = open(root / "server.log", "a")
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend or f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": "", **(env or {})},
    )
    log.close()  # the child keeps its own handle
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, proc)
    except BaseException:
        stop_mlflow_server(proc)
        raise
    return proc, f"http://127.0.0.1:{port}"


def stop_mlflow_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a server started by :func:`start_mlflow_server` (``SIGKILL``: as if it died)."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass  # it already stopped (the log says why)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@contextlib.contextmanager
def running_mlflow_server(root: Path, *extra: str, env: dict[str, str] | None = None):
    """An `mlflow server` (SQLite backend, local artifacts) under ``root`` on 127.0.0.1, stopped afterwards."""
    proc, uri = start_mlflow_server(root, *extra, env=env)
    try:
        yield uri
    finally:
        stop_mlflow_server(proc)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """Start `mlflow server` (SQLite backend, local artifact root) on 127.0.0.1; yield its URI."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as uri:
        yield uri


AUTH_ADMIN = ("admin", "admin-password-1234")


@pytest.fixture(scope="session")
def mlflow_auth_server(tmp_path_factory):
    """`mlflow server --app-name basic-auth` on 127.0.0.1 (admin: ``AUTH_ADMIN``); yield its URI."""
    root: Path = tmp_path_factory.mktemp("mlflow-auth-server")
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = EDIT\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = {AUTH_ADMIN[0]}\n"
        f"admin_password = {AUTH_ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    with running_mlflow_server(
        root,
        "--app-name",
        "basic-auth",
        env={"MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-csrf-key"},
    ) as uri:
        yield uri
