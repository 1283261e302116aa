"""`promote demo` (and `make demo`): the whole release story on the embedded default.

In a scratch folder it creates a git repository holding the project's configs, generates the
synthetic population, and replays, through the same code path CI uses:

1. a push to a feature branch (dev), a PR into main (staging candidate), the merge (staging
   champion), then ``release/1.0``: the first prod champion, and batch scoring;
2. a change that adds the social-determinant groups: PR, merge, ``release/1.1``: the
   challenger beats the champion by the policy's margin, is promoted, and scores;
3. a change that drops the clinical groups: PR, merge, ``release/1.2``: the gate says no, the
   champion stays (exit 3, expected and handled here).

It ends with a table of every decision and the count of scored members, and prints the
command that opens the MLflow UI on the demo's store. No servers are needed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pipelines import synthetic
from promoter import errors

PROJECT_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# the synthetic population's feature groups (the demo's story selects them)
CLINICAL_GROUPS = list(synthetic.CLINICAL_GROUPS)
SDOH_GROUPS = list(synthetic.SDOH_GROUPS)
DEMO_DIR = "demo-out"


@dataclass
class Decision:
    """One row of the closing table."""

    event: str
    environment: str | None
    candidate: int | None
    champion: int | None
    candidate_metric: float | None
    champion_metric: float | None
    verdict: str
    exit_code: int
    seconds: float
    planned: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    repo: Path
    decisions: list[Decision] = field(default_factory=list)
    champion: int | None = None
    scored: dict[Any, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    mlflow_uri: str = ""


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _selection(repo: Path, *, groups: list[str]) -> None:
    """Select exactly ``groups`` in the repo's feature_selection_config.yml (a config-only change)."""
    path = repo / "configs" / "base" / "feature_selection_config.yml"
    data = yaml.safe_load(path.read_text()) or {}
    data["include_groups"] = groups
    data["exclude_groups"] = []
    _write_yaml(path, data)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


class Demo:
    """Drives the story; each step is one replayed event."""

    def __init__(
        self,
        workdir: Path,
        members: int,
        seed: int,
        max_evals: int,
        say: Callable[[str], None],
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.repo = workdir / "hrob-model"
        self.members = members
        self.seed = seed
        self.max_evals = max_evals
        self.say = say
        self.result = DemoResult(repo=self.repo)
        self.spark: Any = None
        self.primary = "roc_auc"
        self.today = datetime.now(UTC).date()
        # the story's releases land on consecutive days, so the predictions table shows which
        # champion scored which day: release 1.0 two days ago, 1.1 yesterday, 1.2 today
        self.score_date = self.today - timedelta(days=2)
        self.overrides = overrides or {}

    # -------------------------------------------------------------- set-up
    def setup(self) -> None:
        from promoter import config, gitops

        if self.repo.exists():
            shutil.rmtree(self.repo)
        self.repo.mkdir(parents=True)
        shutil.copytree(PROJECT_CONFIGS, self.repo / "configs")
        # the demo keeps the search short so the whole story fits in minutes on 2 cores
        for env in ("dev", "staging", "prod"):
            path = self.repo / "configs" / env / "training.yml"
            data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
            data["max_evals"] = self.max_evals
            _write_yaml(path, data)
        for rel, data in self.overrides.items():  # e.g. {"prod/promotion.yml": {...}} for small data
            _write_yaml(self.repo / "configs" / rel, data)
        _selection(self.repo, groups=list(CLINICAL_GROUPS))
        (self.repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
        (self.repo / "README.md").write_text(
            "# HROB risk model\n\nDeployed with `promote`: branches are environments.\n"
        )
        gitops.init_repo(self.repo)
        gitops.commit_all(self.repo, "HROB model: clinical feature groups")
        os.chdir(self.repo)
        settings = config.load("configs", None)
        self.primary = settings.promotion.policy(settings.promotion.prod_environment).primary_metric
        self.result.mlflow_uri = f"sqlite:///{(self.repo / '.promote' / 'mlflow.db').resolve()}"

        from pipelines import session, synthetic

        self.say(f"generating {self.members:,} synthetic members (bronze, with PHI columns)")
        self.spark = session.from_settings(settings.project.spark)
        counts = synthetic.generate(self.spark, settings, self.members, self.seed, self.today)
        self.say("  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))

    # -------------------------------------------------------------- one event
    def replay(self, label: str, **event_args: Any) -> Decision:
        from promoter.app import prepare, run, sources

        started = time.monotonic()
        event = sources.from_local(self.repo, **event_args)
        self.say(f"\n=== {label}")
        code, result = 0, None
        try:
            prepared = prepare.prepare(event, "configs", self.repo)
            self.say(f"    -> {prepared.plan.environment}: " + ", ".join(prepared.plan.step_names()))
            result = run.execute(prepared, repo_path=self.repo, spark=self.spark, score_date=self.score_date)
        except (errors.GateRejected, errors.AwaitingApproval) as exc:
            code = exc.exit_code
            self.say(f"    exit {code}: {exc}")
            result = getattr(exc, "result", None)
        verdict = result.verdict if result is not None else None
        decision = self._decision(label, event, result, verdict, code, time.monotonic() - started)
        decision.planned = prepared.plan.step_names()
        decision.executed = result.executed if result is not None else []
        self.result.decisions.append(decision)
        self.say(
            f"    {decision.verdict}: candidate v{decision.candidate} {self.primary} "
            f"{_fmt(decision.candidate_metric)}, champion v{decision.champion} {_fmt(decision.champion_metric)}"
            f" ({decision.seconds:.0f}s)"
        )
        return decision

    def _decision(
        self, label: str, event: Any, result: Any, verdict: dict[str, Any] | None, code: int, seconds: float
    ) -> Decision:
        cand = champ = None
        cand_m = champ_m = None
        env = None
        status = "DONE"
        if result is not None:
            env = result.environment
            cand = (result.candidate or {}).get("version")
            champ = (result.champion or {}).get("version")
            if result.champion_moved:
                status = "PROMOTED"
        if verdict:
            row = verdict.get("comparison", {}).get(self.primary, {})
            cand_m, champ_m = row.get("candidate"), row.get("champion")
            champ = verdict.get("champion_version", champ)
            status = verdict["status"] + (" -> champion" if result is not None and result.champion_moved else "")
        elif result is not None and result.candidate:
            cand_m = (result.candidate.get("metrics") or {}).get(self.primary)
        if code == 3:
            status = "FAIL (exit 3)"
        return Decision(label, env, cand, champ, cand_m, champ_m, status, code, seconds)

    def change(self, branch: str, message: str, edit: Callable[[], None]) -> None:
        from promoter import gitops

        gitops.checkout(self.repo, "main")
        gitops.checkout(self.repo, branch, create=True)
        edit()
        gitops.commit_all(self.repo, message)

    def pull_request_and_merge(self, branch: str, number: int) -> None:
        from promoter import gitops

        self.replay(
            f"PR #{number} {branch} -> main",
            kind="pull_request",
            source_branch=branch,
            target_branch="main",
            pr_number=number,
        )
        gitops.checkout(self.repo, "main")
        gitops.merge_ff(self.repo, branch)
        self.replay(f"merge #{number} into main", kind="push", branch="main")

    def cut_and_release(self, version: str, *, force_reason: str | None = None) -> Decision:
        from promoter import config
        from promoter.app import release

        settings = config.load("configs", None)
        staging = config.load("configs", settings.promotion.pull_request_fallback)
        readiness = None if force_reason else release.mlflow_readiness(staging, repo=str(self.repo))
        cut = release.cut_release(
            str(self.repo),
            source="main",
            version=version,
            force=bool(force_reason),
            reason=force_reason,
            readiness=readiness,
            settings=settings,
        )
        self.say(f"\n$ promote cut-release --version {version}" + (" --force" if force_reason else ""))
        self.say(f"    {cut.branch} + tag {cut.tag} at {cut.sha[:12]} ({cut.readiness})")
        decision = self.replay(f"release {cut.branch}", kind="push", branch=cut.branch)
        self.score_date += timedelta(days=1)
        if decision.exit_code == 4 and decision.candidate is not None:
            # the policy sends a marginal win to a person: the release manager signs it off
            from promoter.app import decisions

            action = decisions.approve(
                "configs",
                settings.promotion.prod_environment,
                decision.candidate,
                "release.manager",
                ticket="CHG-DEMO",
                reason="reviewed the gate report",
            )
            self.say(f"\n$ promote approve --env prod --version {decision.candidate} --by release.manager")
            self.say(f"    {action.message}")
            if action.champion_moved:
                decision.verdict = "NEEDS_APPROVAL -> approved -> champion"
        return decision

    # -------------------------------------------------------------- the story
    def story(self) -> None:
        self.change(
            "feature/baseline",
            "Tune the baseline search",
            lambda: (self.repo / "NOTES.md").write_text("Baseline: clinical groups only.\n"),
        )
        self.replay("push feature/baseline", kind="push", branch="feature/baseline")
        self.pull_request_and_merge("feature/baseline", 1)
        self.cut_and_release("1.0")

        self.change(
            "feature/sdoh",
            "Add the social-determinant feature groups",
            lambda: _selection(self.repo, groups=CLINICAL_GROUPS + SDOH_GROUPS),
        )
        self.pull_request_and_merge("feature/sdoh", 2)
        self.cut_and_release("1.1")

        self.change(
            "feature/drop-clinical",
            "Drop the clinical feature groups",
            lambda: _selection(self.repo, groups=list(SDOH_GROUPS)),
        )
        self.pull_request_and_merge("feature/drop-clinical", 3)
        last = self.decisions_for("merge #3 into main")
        reason = None
        if last is not None and last.exit_code != 0:
            reason = "demo: release the SDOH-only model anyway, to show the prod gate refusing it"
        self.cut_and_release("1.2", force_reason=reason)

    def decisions_for(self, label: str) -> Decision | None:
        return next((d for d in self.result.decisions if d.event == label), None)

    def finish(self) -> None:
        from pipelines import score
        from promoter import config
        from promoter.app.connect import open_registry
        from promoter.core import tags

        prod = config.load("configs", config.load("configs", None).promotion.prod_environment)
        registry = open_registry(prod)
        self.result.champion = registry.get_alias(prod.model_name_for(prod.env), tags.CHAMPION)
        self.result.scored = score.predictions_summary(prod)


def table(result: DemoResult, primary: str) -> str:
    """The closing table of every decision."""
    head = ("event", "env", "candidate", "champion", f"cand {primary}", f"champ {primary}", "verdict")
    rows = [head] + [
        (
            d.event,
            d.environment or "-",
            f"v{d.candidate}" if d.candidate else "-",
            f"v{d.champion}" if d.champion else "-",
            _fmt(d.candidate_metric),
            _fmt(d.champion_metric),
            d.verdict,
        )
        for d in result.decisions
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(
    workdir: str | Path = DEMO_DIR,
    members: int = 20_000,
    seed: int = 7,
    max_evals: int = 4,
    say: Callable[[str], None] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> DemoResult:
    """Run the demo story; returns what happened (the e2e test asserts on it).

    Args:
        overrides: config files to write over the project's, e.g. ``{"prod/promotion.yml": {...}}``.
    """
    say = say or (lambda m: print(m, flush=True))
    started = time.monotonic()
    cwd = os.getcwd()
    workdir = Path(workdir).resolve()
    demo = Demo(workdir, members, seed, max_evals, say, overrides)
    try:
        demo.setup()
        demo.story()
        demo.finish()
    finally:
        os.chdir(cwd)
    demo.result.seconds = time.monotonic() - started
    res = demo.result
    say("\n" + table(res, demo.primary))
    say("")
    for day, info in sorted(res.scored.items()):
        say(f"scored {info['rows']:,} members on {day} with version {info['model_version']}")
    say(f"prod champion: version {res.champion}")
    say(f"finished in {res.seconds / 60:.1f} min")
    say(f"\nopen the MLflow UI on the demo's store:\n  mlflow ui --backend-store-uri {res.mlflow_uri}")
    return res
