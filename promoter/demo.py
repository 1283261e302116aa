"""`make demo`: plans for a set of sample events (grows into the full release story)."""

from __future__ import annotations

import sys
from pathlib import Path

from promoter import config, events, plan
from promoter.report import render

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "github"

SAMPLES: list[tuple[str, events.Event]] = [
    ("push to a feature branch", events.Event(kind="push", provider="local", branch="feature/sdoh-groups")),
    ("pull request into main", events.Event(kind="pull_request", provider="local", branch="main",
                                            source_branch="feature/sdoh-groups", target_branch="main",
                                            pr_number=42)),
    ("merge to main", events.Event(kind="push", provider="local", branch="main")),
    ("cut release/1.0", events.Event(kind="push", provider="local", branch="release/1.0")),
    ("pull request into release/1.0", events.Event(kind="pull_request", provider="local", branch="release/1.0",
                                                   source_branch="hotfix/x", target_branch="release/1.0")),
    ("daily schedule", events.Event(kind="schedule", provider="local", branch="main")),
    ("tag push", events.Event(kind=None, provider="local", nothing="tag push (refs/tags/v1.0) is not a branch")),
]


def main(config_dir: str = "configs") -> int:
    base = config.load(config_dir)
    for title, event in SAMPLES:
        p = plan.build(event, base)
        if p.environment:
            p = plan.build(event, config.load(config_dir, p.environment))
        print(f"== {title}")
        print(render.plan_text(p))
    for payload in sorted(FIXTURES.glob("*.json")):
        event = events.from_github({}, events.read_payload(payload))
        p = plan.build(event, base)
        print(f"== GitHub payload {payload.name}")
        print(render.plan_text(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
