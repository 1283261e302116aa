"""Alert sinks against the fake GitHub / Azure DevOps / webhook server on 127.0.0.1."""

from __future__ import annotations

import socket
import time

import pytest

from promoter.config.models import AlertSettings
from promoter.report import monitoring as rendering
from promoter.report.alerts import Alert, SinkResult, markdown_to_html, send_alerts, webhook_body
from tests.report.conftest import AZ_TOKEN, TOKEN

HOOK_SECRET = "T0001/B0002/hookS3cretPart"
MARK = rendering.marker("hrob-risk", "prod")


def make_alert(verdict: str = "ALERT", alerts: list[str] | None = None, day: str = "2024-05-02") -> Alert:
    alerts = ["input drift: 3 of 10 features drifted"] if alerts is None and verdict == "ALERT" else (alerts or [])
    summary = {
        "model_name": "hrob-risk",
        "environment": "prod",
        "score_date": day,
        "verdict": verdict,
        "alerts": alerts,
        "model_version": 3,
    }
    return Alert(
        model_name="hrob-risk",
        environment="prod",
        title="Monitoring alert: hrob-risk (prod)",
        body_markdown=rendering.markdown(summary),
        alerts=alerts,
        verdict=verdict,
        url="https://ci.example.org/runs/9",
        payload={"score_date": day, "model_version": 3},
    )


@pytest.fixture
def env(github_env, azure_env, fake_api):
    return {
        **github_env,
        **azure_env,
        "PROMOTE_ALERT_WEBHOOK": f"{fake_api.base_url}/hooks/{HOOK_SECRET.replace('/', '-')}",
    }


def settings(github: bool = True, azure: bool = True, webhook: bool = True) -> AlertSettings:
    return AlertSettings(
        github={"enabled": github},
        azure={"enabled": azure, "area_path": "Risk Models\\Monitoring"},
        webhook={"url_env": "PROMOTE_ALERT_WEBHOOK" if webhook else None},
    )


def _clean(results: list[SinkResult]) -> None:
    for r in results:
        assert TOKEN not in r.message and AZ_TOKEN not in r.message
        assert HOOK_SECRET.replace("/", "-") not in r.message and "/hooks/" not in r.message


def _ours(fake_api) -> list[dict]:
    return [i for i in fake_api.issues.get("acme/hrob", []) if MARK in (i["body"] or "")]


def test_github_issue_opens_updates_in_place_and_closes(fake_api, env):
    # other issues with the label come first: ours is found through the pages (page size 2)
    fake_api.issues["acme/hrob"] = [
        {"number": n, "title": t, "body": b, "state": s, "labels": [{"name": "promote-monitoring"}]}
        for n, t, b, s in [
            (1, "other model", rendering.marker("other", "prod"), "open"),
            (2, "staging", rendering.marker("hrob-risk", "staging"), "open"),
            (3, "old alert", MARK + "\nlast month", "closed"),
            (4, "human", "unrelated", "open"),
        ]
    ]
    first = send_alerts(make_alert(), settings(azure=False, webhook=False), env)
    assert [(r.sink, r.action, r.ok) for r in first] == [("github", "opened", True)]
    opened = [i for i in _ours(fake_api) if i["state"] == "open"]
    assert len(opened) == 1 and opened[0]["number"] == 5
    assert opened[0]["labels"] == [{"name": "promote-monitoring"}]
    assert "input drift: 3 of 10" in opened[0]["body"] and opened[0]["body"].startswith(MARK)

    second = send_alerts(
        make_alert(alerts=["prediction drift: score PSI 0.31"], day="2024-05-03"), settings(False, False, False), env
    )
    assert second == []  # nothing configured: nothing sent
    second = send_alerts(
        make_alert(alerts=["prediction drift: score PSI 0.31"], day="2024-05-03"),
        settings(azure=False, webhook=False),
        env,
    )
    assert [(r.action, r.message) for r in second] == [("updated", "issue #5 updated")]
    opened = [i for i in _ours(fake_api) if i["state"] == "open"]
    assert [i["number"] for i in opened] == [5] and len(fake_api.issues["acme/hrob"]) == 5
    assert "score PSI 0.31" in opened[0]["body"] and "3 of 10" not in opened[0]["body"]
    assert any(s.query.get("page") == ["2"] for s in fake_api.requests_to("GET", r"/repos/acme/hrob/issues$"))
    assert all(s.query["labels"] == ["promote-monitoring"] for s in fake_api.requests_to("GET", r"/issues$"))

    third = send_alerts(make_alert("OK", day="2024-05-04"), settings(azure=False, webhook=False), env)
    assert [(r.action, r.ok) for r in third] == [("closed", True)]
    issue = fake_api.issues["acme/hrob"][4]
    assert issue["state"] == "closed" and issue["state_reason"] == "completed" and "**Cleared**" in issue["body"]
    # the others were never touched
    assert [i["state"] for i in fake_api.issues["acme/hrob"][:4]] == ["open", "open", "closed", "open"]
    assert len(fake_api.requests_to("PATCH", r"/issues/\d+$")) == 2

    fourth = send_alerts(make_alert("OK", day="2024-05-05"), settings(azure=False, webhook=False), env)
    assert [(r.action, r.ok) for r in fourth] == [("none", True)]
    again = send_alerts(make_alert(day="2024-05-06"), settings(azure=False, webhook=False), env)
    assert [r.action for r in again] == ["opened"]  # a new alert after a cleared one is a new issue
    assert [i["number"] for i in _ours(fake_api) if i["state"] == "open"] == [6]
    _clean(first + second + third + fourth + again)
    assert all(s.auth == f"Bearer {TOKEN}" for s in fake_api.requests_to("PATCH", r"/issues/"))


def test_azure_work_item_created_updated_and_closed(fake_api, env):
    other = {
        "id": 1,
        "fields": {
            "System.WorkItemType": "Issue",
            "System.State": "To Do",
            "System.Tags": "promote-monitoring; other/prod",
            "System.Title": "other",
        },
    }
    fake_api.work_items[1] = other
    only_azure = settings(github=False, webhook=False)
    first = send_alerts(make_alert(), only_azure, env)
    assert [(r.sink, r.action, r.ok) for r in first] == [("azure", "opened", True)], first
    ours = [i for i in fake_api.work_items.values() if "hrob-risk/prod" in i["fields"].get("System.Tags", "")]
    assert len(ours) == 1
    fields = ours[0]["fields"]
    assert fields["System.WorkItemType"] == "Issue" and fields["System.State"] == "To Do"
    assert [t.strip() for t in fields["System.Tags"].split(";")] == ["promote-monitoring", "hrob-risk/prod"]
    assert fields["System.AreaPath"] == "Risk Models\\Monitoring"
    assert fields["System.Title"] == "Monitoring alert: hrob-risk (prod)"
    assert "<li>input drift: 3 of 10 features drifted</li>" in fields["System.Description"]
    assert "https://ci.example.org/runs/9" in fields["System.Description"]
    created = fake_api.requests_to("POST", r"/_apis/wit/workitems/\$Issue$")
    assert len(created) == 1 and created[0].content_type == "application/json-patch+json"
    assert created[0].path.startswith("/acme/proj-1/")

    second = send_alerts(make_alert(alerts=["realised roc_auc 0.61 below floor 0.70"]), only_azure, env)
    assert [(r.action, r.message) for r in second] == [("updated", f"work item {ours[0]['id']} updated")]
    assert len(fake_api.work_items) == 2
    assert "realised roc_auc 0.61" in fields["System.Description"] and "3 of 10" not in fields["System.Description"]

    third = send_alerts(make_alert("OK"), only_azure, env)
    assert [(r.action, r.ok) for r in third] == [("closed", True)]
    assert fields["System.State"] == "Done" and "Cleared" in fields["System.Description"]
    assert other["fields"]["System.State"] == "To Do"
    # closed items are not found again: nothing left to close, and a new alert is a new item
    assert [r.action for r in send_alerts(make_alert("OK"), only_azure, env)] == ["none"]
    assert [r.action for r in send_alerts(make_alert(), only_azure, env)] == ["opened"]
    assert len(fake_api.work_items) == 3
    query = fake_api.requests_to("POST", r"/_apis/wit/wiql$")[0].body["query"]
    assert "CONTAINS 'hrob-risk/prod'" in query and "<> 'Done'" in query
    _clean(first + second + third)


def test_webhook_body_on_alert_and_on_clearing(fake_api, env):
    only_hook = settings(github=False, azure=False)
    alert = send_alerts(make_alert(), only_hook, env)
    ok = send_alerts(make_alert("OK"), only_hook, env)
    assert [(r.sink, r.action, r.ok) for r in alert + ok] == [("webhook", "sent", True)] * 2
    bodies = fake_api.hooks[HOOK_SECRET.replace("/", "-")]
    assert bodies[0] == {
        "text": "Monitoring alert: hrob-risk (prod): input drift: 3 of 10 features drifted (https://ci.example.org/runs/9)",
        "model_name": "hrob-risk",
        "environment": "prod",
        "verdict": "ALERT",
        "alerts": ["input drift: 3 of 10 features drifted"],
        "url": "https://ci.example.org/runs/9",
        "score_date": "2024-05-02",
        "model_version": 3,
    }
    assert bodies[1]["verdict"] == "OK" and bodies[1]["alerts"] == [] and bodies[1]["text"].startswith("Cleared:")
    assert bodies == [webhook_body(make_alert()), webhook_body(make_alert("OK"))]
    assert all(s.auth is None for s in fake_api.requests_to("POST", r"^/hooks/"))  # no token leaves for it
    _clean(alert + ok)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failing_sink_is_a_result_and_the_others_still_run(fake_api, env):
    fake_api.add_fault("GET", r"/repos/acme/hrob/issues$", 500, times=-1)
    env = {
        **env,
        "SYSTEM_COLLECTIONURI": f"http://127.0.0.1:{_closed_port()}/acme/",
        "PROMOTE_HTTP_TRIES": "2",
        "PROMOTE_HTTP_DEADLINE": "2",
    }
    alert = make_alert(alerts=[f"leaked {TOKEN} and {AZ_TOKEN}"])
    started = time.monotonic()
    results = send_alerts(alert, settings(), env)
    assert time.monotonic() - started < 8
    by = {r.sink: r for r in results}
    assert [r.sink for r in results] == ["github", "azure", "webhook"]
    assert not by["github"].ok and by["github"].action == "alert" and "HTTP 500" in by["github"].message
    assert not by["azure"].ok and "cannot connect" in by["azure"].message
    assert by["webhook"].ok and by["webhook"].action == "sent"
    assert len(fake_api.requests_to("GET", r"/issues$")) == 2  # bounded: PROMOTE_HTTP_TRIES
    # the body sent is masked too
    sent = fake_api.hooks[HOOK_SECRET.replace("/", "-")][0]
    assert TOKEN not in str(sent) and AZ_TOKEN not in str(sent) and "***" in sent["text"]
    _clean(results)


def test_a_failing_webhook_never_names_its_url(fake_api, env):
    fake_api.add_fault("POST", r"^/hooks/", 502, times=-1)
    env = {**env, "PROMOTE_HTTP_TRIES": "2", "PROMOTE_HTTP_DEADLINE": "2"}
    (result,) = send_alerts(make_alert(), settings(github=False, azure=False), env)
    assert not result.ok and "HTTP 502" in result.message and "PROMOTE_ALERT_WEBHOOK" in result.message
    refused = {**env, "PROMOTE_ALERT_WEBHOOK": f"http://127.0.0.1:{_closed_port()}/hooks/{HOOK_SECRET}"}
    (result,) = send_alerts(make_alert(), settings(github=False, azure=False), refused)
    assert not result.ok and "cannot connect" in result.message
    assert HOOK_SECRET not in result.message and "/hooks/" not in result.message


def test_configured_sinks_without_their_ci_variables_are_skipped():
    results = send_alerts(make_alert(), settings(), {"GITHUB_REPOSITORY": "acme/hrob"})
    assert [(r.sink, r.action, r.ok) for r in results] == [
        ("github", "skipped", True),
        ("azure", "skipped", True),
        ("webhook", "skipped", True),
    ]
    assert "GITHUB_TOKEN is not set" in results[0].message and "issues: write" in results[0].message
    assert "SYSTEM_COLLECTIONURI" in results[1].message
    assert "PROMOTE_ALERT_WEBHOOK is not set" in results[2].message
    assert send_alerts(make_alert(), AlertSettings(), {}) == []  # the defaults send nothing


def test_markdown_to_html_renders_the_report_tables():
    text = "<!-- m -->\n## Head **x**\n\n| a | b\\|c |\n|---|---|\n| 1 | <2> |\n\n> note\n- one\n- two\n"
    assert markdown_to_html(text) == (
        "<h2>Head <b>x</b></h2>\n<table><tr><th>a</th><th>b|c</th></tr><tr><td>1</td><td>&lt;2&gt;</td></tr></table>\n"
        "<blockquote>note</blockquote>\n<ul><li>one</li><li>two</li></ul>"
    )
