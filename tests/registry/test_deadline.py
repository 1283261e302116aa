"""A bounded wait for the tracking server: MLflow's retries sized from the deadline, and the one
error for a server that cannot be reached (a real closed port on 127.0.0.1, a real SQLite store)."""

from __future__ import annotations

import os
import socket

import pytest

from promoter.errors import TrackingUnreachable
from promoter.registry import Registry, deadline

KEYS = (deadline.RETRIES, deadline.BACKOFF, deadline.JITTER, deadline.TIMEOUT)


@pytest.fixture
def clean_env():
    """MLflow's retry variables as they were before the test (the adapter sets them per process)."""
    saved = {k: os.environ.get(k) for k in KEYS}
    saved_ours = dict(deadline._OURS)
    for k in KEYS:
        os.environ.pop(k, None)
    deadline._OURS.clear()
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    deadline._OURS.clear()
    deadline._OURS.update(saved_ours)


def _worst_case(retries: int, timeout: int) -> int:
    """urllib3's sleeps (0, 2, 4, ... with factor 1) plus every attempt waiting the full timeout."""
    sleeps = sum(0 if i == 1 else 2 ** (i - 1) for i in range(1, retries + 1))
    return sleeps + (retries + 1) * timeout


@pytest.mark.parametrize(
    ("deadline_s", "timeout_s"), [(120, 20), (30, 5), (10, 20), (600, 60), (5, 1), (3600, 1), (7, 7)]
)
def test_retries_are_the_most_that_fit_the_deadline(deadline_s, timeout_s):
    got = deadline.retry_settings(deadline_s, timeout_s)
    retries, timeout = int(got[deadline.RETRIES]), int(got[deadline.TIMEOUT])
    assert timeout == min(timeout_s, deadline_s)
    assert got[deadline.BACKOFF] == "1" and got[deadline.JITTER] == "0"
    assert _worst_case(retries, timeout) <= deadline_s
    assert retries == 10 or _worst_case(retries + 1, timeout) > deadline_s


def test_the_shipped_default_retries_four_times_within_two_minutes():
    got = deadline.retry_settings(deadline.DEFAULT_DEADLINE_SECONDS, deadline.DEFAULT_REQUEST_TIMEOUT_SECONDS)
    assert got[deadline.RETRIES] == "4" and got[deadline.TIMEOUT] == "20"


def test_an_explicit_mlflow_setting_wins_over_the_deadline(clean_env):
    os.environ[deadline.RETRIES] = "9"
    applied = deadline.apply(60, 10)
    assert applied[deadline.RETRIES] == "9"  # the user's
    assert applied[deadline.TIMEOUT] == "10"  # ours: not set by the user
    again = deadline.apply(120, 20)  # a later registry may change what this process set itself
    assert again[deadline.TIMEOUT] == "20" and again[deadline.RETRIES] == "9"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is


def test_a_closed_port_is_one_error_naming_the_server(clean_env):
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingUnreachable, match=rf"^tracking server unreachable at {uri} after \d+s$") as info:
        Registry(uri, deadline_seconds=5, request_timeout_seconds=2)
    assert info.value.uri == uri
    assert deadline.is_unreachable(info.value.__cause__)  # MLflow's own exception, recognised too


def test_after_the_server_is_found_down_calls_get_one_quick_attempt(clean_env, tmp_path):
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    seen: list[str | None] = []
    registry.client._client.search_registered_models = lambda **kw: seen.append(os.environ.get(deadline.RETRIES))
    registry.client.search_registered_models(max_results=1)
    registry.mark_unreachable()
    assert not registry.reachable
    registry.client.search_registered_models(max_results=1)
    assert seen == [None, "0"]  # the second call: no retries, and the variable is put back after
    assert os.environ.get(deadline.RETRIES) is None


def test_errors_that_are_not_about_reaching_the_server_pass_unchanged(tmp_path):
    from mlflow.exceptions import MlflowException

    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(MlflowException) as info:
        registry.client.get_registered_model("no-such-model")
    assert not isinstance(info.value, TrackingUnreachable) and not deadline.is_unreachable(info.value)
    assert registry.reachable
