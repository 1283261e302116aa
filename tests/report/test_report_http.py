"""The retrying HTTP session, against the fake API on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
import requests

from promoter.report import http

TOKEN = "ghs_s3cr3tT0kenValue0123456789"


def _url(api, path="/repos/acme/hrob/statuses/" + "a" * 40):
    return api.base_url + path


def test_5xx_then_success_is_retried(fake_api):
    fake_api.add_fault("POST", "/statuses/", 503, times=2)
    s = http.session(TOKEN, policy=http.HttpPolicy(backoff_factor=0.05, deadline=5))
    r = s.post(_url(fake_api), json={"state": "success"})
    assert r.status_code == 201
    assert [x.status for x in fake_api.seen] == [503, 503, 201]


def test_client_errors_are_not_retried(fake_api):
    s = http.session("wrong-token-value", policy=http.HttpPolicy(backoff_factor=0.05))
    r = s.post(_url(fake_api), json={"state": "success"})
    assert r.status_code == 401 and len(fake_api.seen) == 1


def test_a_retry_after_beyond_the_allowed_wait_gives_up_at_once(fake_api):
    fake_api.add_fault("POST", "/statuses/", 429, {"Retry-After": "3600"}, times=-1)
    s = http.session(TOKEN, policy=http.HttpPolicy(retry_after_max=2, deadline=60))
    started = time.monotonic()
    r = s.post(_url(fake_api), json={})
    assert r.status_code == 429
    assert time.monotonic() - started < 2  # it did not sleep for the hour
    assert len(fake_api.seen) == 1


def test_the_deadline_stops_retries(fake_api):
    fake_api.add_fault("GET", ".", 502, times=-1)
    s = http.session(TOKEN, policy=http.HttpPolicy(tries=50, backoff_factor=0.2, backoff_max=0.4, deadline=1.5))
    r = s.get(_url(fake_api, "/repos/acme/hrob/issues/1/comments"))
    assert r.status_code == 502
    assert 2 <= len(fake_api.seen) < 50
    assert fake_api.seen[-1].at - fake_api.seen[0].at <= 1.5


def test_connection_refused_is_an_exception_not_a_hang():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = http.session(TOKEN, policy=http.HttpPolicy(tries=2, backoff_factor=0.01, deadline=3))
    with pytest.raises(requests.exceptions.ConnectionError):
        s.get(f"http://127.0.0.1:{port}/repos/acme/hrob/issues/1/comments")


def test_tries_run_out_returns_the_last_error_response(fake_api):
    fake_api.add_fault("GET", ".", 500, times=-1)
    s = http.session(TOKEN, policy=http.HttpPolicy(tries=3, backoff_factor=0.01, deadline=10))
    r = s.get(_url(fake_api, "/repos/acme/hrob/issues/1/comments"))
    assert r.status_code == 500 and len(fake_api.seen) == 3


@pytest.mark.parametrize(
    "env,tries,deadline",
    [
        ({}, 5, 20.0),
        ({"PROMOTE_HTTP_TRIES": "2", "PROMOTE_HTTP_DEADLINE": "3.5"}, 2, 3.5),
        ({"PROMOTE_HTTP_TRIES": "many"}, 5, 20.0),
    ],
)
def test_policy_from_env(env, tries, deadline):
    p = http.HttpPolicy.from_env(env)
    assert (p.tries, p.deadline) == (tries, deadline)
