"""`promote demo` (and `make demo`): two model projects released through one engine.

In a scratch folder it creates ONE git repository holding two model projects, HROB (``configs/``,
the reference project) and 30-day readmission (``models/readmission/configs/``), generates each
one's synthetic data, and replays, through the same code path CI uses, against ONE registry
(MLflow on SQLite) and ONE lake, in interleaved order:

1. HROB: a PR into main (staging candidate), the merge (staging champion), ``release/1.0``:
   the first prod champion, and batch scoring;
2. HROB: a change that adds the social-determinant groups: PR, merge, ``release/1.1``: the
   challenger beats the champion by the policy's margin, is promoted, and scores;
3. HROB: an incident: ``promote rollback`` puts version 1 back and holds HROB's automatic
   promotion;
4. readmission: a push to a feature branch (dev), PR, merge, ``release/readmission/1.0``: its
   first prod champion, promoted normally: HROB's hold is HROB's alone;
5. HROB: a change that drops the clinical groups: PR, merge, ``release/1.2``: the gate says no
   (exit 3, expected and handled here), the rolled-back champion stays;
6. readmission: a change that adds prior utilisation and the social context: PR, merge,
   ``release/readmission/1.1``: promoted.

Then post-market surveillance of readmission's prod champion over four daily runs (the
schedule's ``score, surveillance, report``): a stable day, a frailer population the next day
(a drift alert), the day the first day's outcomes have matured (realised AUC per subgroup; the
second breached window asks for a retrain from the release branch), and one more drifted day
(no second request while the first is pending).

``story="short"`` stops after step 4 and its monitoring days; ``story="monitoring"`` is only
readmission's first release and its monitoring days (what ``make test`` runs).

It ends with a table of every decision (model, environment, event, planned steps, decision,
version, champion after, exit code), each model's scored rows and champion, the total time, and
the command that opens the MLflow UI on the demo's store. No servers are needed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml

from pipelines import synthetic, synthetic_readmission
from promoter import errors

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = "demo-out"
REPO_NAME = "model-repo"
Story = Literal["full", "short", "monitoring"]

# The demo's populations are smaller than the shipped HROB policy is sized for (20,000 members,
# 4,000 held out): at a few thousand members a subgroup's AUC is too noisy for a 0.15 gap rule.
# The scratch repository's configs/prod/promotion.yml says so and loosens only the fairness
# limits; every other rule (floors, ceilings, margin, significance) is the shipped one.
DEMO_HROB_POLICY: dict[str, Any] = {
    "gate": {"prod": {"fairness": {"max_gap": 0.25, "max_regression": 0.10, "min_group_size": 100}}}
}


@dataclass(frozen=True)
class Project:
    """One model project of the demo's repository."""

    name: str  # what `promote --project` takes
    config_dir: str  # relative to the repository root
    source: Path  # the shipped configs it is copied from
    readme: str


HROB = Project(
    "hrob",
    "configs",
    ROOT / "configs",
    "High-risk obstetrics (HROB) risk model: `configs/`.",
)
READMISSION = Project(
    "readmission",
    "models/readmission/configs",
    ROOT / "models" / "readmission" / "configs",
    "30-day readmission risk at discharge: `models/readmission/configs/`.",
)
PROJECTS = (HROB, READMISSION)

# the synthetic data's feature groups (the story selects them)
CLINICAL_GROUPS = list(synthetic.CLINICAL_GROUPS)
SDOH_GROUPS = list(synthetic.SDOH_GROUPS)
READMISSION_CLINICAL = list(synthetic_readmission.CLINICAL_GROUPS)
READMISSION_HISTORY = list(synthetic_readmission.HISTORY_GROUPS)
# Release branches: the reference project keeps release/<version>; another project releases from
# release/<project>/<version>. cut-release names the tag after the last part (v<version>) for
# every project, so the second project's versions must not repeat the first one's: a young model
# starts at 0.x.
# the monitoring story's drifted extract (synthetic_readmission's ``shift``)
MONITOR_SHIFT = 1.0
# the days readmission's monitoring story spans: its outcomes' label delay (30) and two more
MONITORING_DAYS = 32
HROB_RELEASES = ("release/1.0", "release/1.1", "release/1.2")
READMISSION_RELEASES = ("release/readmission/1.0", "release/readmission/1.1")


@dataclass
class Decision:
    """One row of the closing table."""

    model: str  # the project's model_name
    event: str
    environment: str | None
    candidate: int | None
    champion: int | None  # the champion the gate compared against (before the event)
    candidate_metric: float | None
    champion_metric: float | None
    verdict: str
    exit_code: int
    seconds: float
    planned: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    champion_after: int | None = None  # the environment's champion once the event was handled
    project: str = ""


@dataclass
class MonitoringDay:
    """One daily monitoring run of the story."""

    project: str
    label: str
    score_date: date
    verdict: str  # ALERT | OK
    summary: str
    alerts: list[str]
    retrain: dict[str, Any]
    realised: dict[str, Any] | None  # the newest matured window's metrics, if any
    planned: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)


DEMO_TICKET = "CHG-2026"  # the change ticket of every release the story cuts (in the release tag)


def _one_member_per_role(policy) -> list[str]:
    """One named member of each role (groups opened), the people who sign off in the story."""
    people: list[str] = []
    for role in policy.roles.values():
        for member in role.members:
            names = policy.groups.get(member[1:], []) if member.startswith("@") else [member]
            named = [n for n in names if n != "*" and ":" not in n and n not in people]
            if named:
                people.extend(named[: max(1, role.required)])
                break
    return people or ["release.manager"]


@dataclass
class DemoResult:
    repo: Path
    decisions: list[Decision] = field(default_factory=list)
    champions: dict[str, int | None] = field(default_factory=dict)  # project -> prod champion
    scored: dict[str, dict[Any, dict[str, Any]]] = field(default_factory=dict)  # project -> day -> rows
    seconds: float = 0.0
    mlflow_uri: str = ""
    primary: dict[str, str] = field(default_factory=dict)  # project -> primary metric
    models: dict[str, str] = field(default_factory=dict)  # project -> model_name
    monitoring: list[MonitoringDay] = field(default_factory=list)

    def decision(self, project: str, event: str) -> Decision:
        """The row of ``event`` of ``project``.

        Raises:
            KeyError: no such row.
        """
        for d in self.decisions:
            if d.project == project and d.event == event:
                return d
        raise KeyError(f"{project}: {event}")


def _write_yaml(path: Path, data: dict[str, Any], comment: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    path.write_text(head + yaml.safe_dump(data, sort_keys=False))


def _selection(repo: Path, project: Project, *, groups: list[str]) -> None:
    """Select exactly ``groups`` in a project's feature_selection_config.yml (a config-only change)."""
    path = repo / project.config_dir / "base" / "feature_selection_config.yml"
    data = yaml.safe_load(path.read_text()) or {}
    data["include_groups"] = groups
    data["exclude_groups"] = []
    _write_yaml(path, data)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


class Demo:
    """Drives the story; each step is one replayed event or one decision a person makes."""

    def __init__(
        self,
        workdir: Path,
        members: int,
        discharges: int,
        seed: int,
        max_evals: int,
        say: Callable[[str], None],
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.workdir = workdir
        self.repo = workdir / REPO_NAME
        self.members = members
        self.discharges = discharges
        self.seed = seed
        self.max_evals = max_evals
        self.say = say
        self.result = DemoResult(repo=self.repo)
        self.spark: Any = None
        self.today = datetime.now(UTC).date()
        # each model's releases land on consecutive days, so its predictions table shows which
        # champion scored which day (HROB: 1.0 two days ago, 1.1 yesterday). Readmission's 1.0
        # scores 33 days ago: its monitoring story then runs the next day, the day after, and
        # 30 days later (its outcomes' label delay), never in the future (the data contracts
        # refuse a snapshot dated after today); 1.1 scores today.
        self.score_dates: dict[str, date] = {
            HROB.name: self.today - timedelta(days=2),
            READMISSION.name: self.today - timedelta(days=MONITORING_DAYS + 1),
        }
        self.overrides = overrides if overrides is not None else {"configs/prod/promotion.yml": DEMO_HROB_POLICY}

    # -------------------------------------------------------------- set-up
    def setup(self) -> None:
        from promoter import config, gitops

        if self.repo.exists():
            shutil.rmtree(self.repo)
        self.repo.mkdir(parents=True)
        for project in PROJECTS:
            target = self.repo / project.config_dir
            shutil.copytree(project.source, target)
            # the demo keeps the search short so the whole story fits in minutes on 2 cores
            for env in ("dev", "staging", "prod"):
                path = target / env / "training.yml"
                data = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
                data["max_evals"] = self.max_evals
                _write_yaml(path, data)
        for rel, data in self.overrides.items():  # e.g. {"configs/prod/promotion.yml": {...}}
            _write_yaml(
                self.repo / rel,
                data,
                "The demo's data is smaller than the shipped policy is sized for; this overlay\n"
                "loosens only what a few thousand rows cannot measure (see promoter/app/demo.py).",
            )
        _selection(self.repo, HROB, groups=list(CLINICAL_GROUPS))
        _selection(self.repo, READMISSION, groups=list(READMISSION_CLINICAL))
        (self.repo / ".gitignore").write_text(".promote/\nspark-warehouse/\n")
        (self.repo / "README.md").write_text(
            "# Model projects\n\nDeployed with `promote`: branches are environments; one engine, one registry.\n\n"
            + "".join(f"- {p.readme}\n" for p in PROJECTS)
        )
        gitops.init_repo(self.repo)
        gitops.commit_all(self.repo, "Two model projects: HROB and 30-day readmission, clinical groups")
        os.chdir(self.repo)
        self.result.mlflow_uri = f"sqlite:///{(self.repo / '.promote' / 'mlflow.db').resolve()}"
        loaded = {p.name: config.load(p.config_dir, None) for p in PROJECTS}
        for p in PROJECTS:
            s = loaded[p.name]
            self.result.primary[p.name] = s.promotion.policy(s.promotion.prod_environment).primary_metric
            self.result.models[p.name] = s.project.model_name

        from pipelines import session

        self.spark = session.from_settings(loaded[HROB.name].project.spark)
        self.say(f"generating {self.members:,} synthetic HROB members (bronze, with PHI columns)")
        counts = synthetic.generate(self.spark, loaded[HROB.name], self.members, self.seed, self.today)
        self.say("  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))
        self.say(f"generating {self.discharges:,} synthetic discharges for the readmission model")
        info = synthetic_readmission.generate(loaded[READMISSION.name], self.discharges, self.seed, self.today)
        self.say(f"  {info['table']}: {info['rows']:,} rows, {info['prevalence']:.1%} readmitted within 30 days")

    # -------------------------------------------------------------- one event
    def replay(self, project: Project, label: str, **event_args: Any) -> Decision:
        from promoter.app import prepare, run, sources

        started = time.monotonic()
        event = sources.from_local(self.repo, **event_args)
        model = self.result.models[project.name]
        self.say(f"\n=== {model}: {label}")
        code, result = 0, None
        prepared = prepare.prepare(event, project.config_dir, self.repo)
        self.say(f"    -> {prepared.plan.environment}: " + ", ".join(prepared.plan.step_names()))
        try:
            day = self.score_dates[project.name]
            result = run.execute(prepared, repo_path=self.repo, spark=self.spark, score_date=day)
        except (errors.GateRejected, errors.AwaitingApproval) as exc:
            code = exc.exit_code
            self.say(f"    exit {code}: {exc}")
            result = getattr(exc, "result", None)
        decision = self._decision(project, label, result, code, time.monotonic() - started)
        decision.planned = prepared.plan.step_names()
        decision.executed = result.executed if result is not None else []
        decision.champion_after = self._champion(project, decision.environment)
        self.result.decisions.append(decision)
        primary = self.result.primary[project.name]
        self.say(
            f"    {decision.verdict}: candidate v{decision.candidate} {primary} "
            f"{_fmt(decision.candidate_metric)}, champion v{decision.champion} {_fmt(decision.champion_metric)}"
            f" ({decision.seconds:.0f}s)"
        )
        return decision

    def _champion(self, project: Project, env: str | None) -> int | None:
        from promoter import config
        from promoter.app.connect import open_registry
        from promoter.core import tags

        if env is None:
            return None
        settings = config.load(project.config_dir, env)
        return open_registry(settings).get_alias(settings.model_name_for(env), tags.CHAMPION)

    def _decision(self, project: Project, label: str, result: Any, code: int, seconds: float) -> Decision:
        cand = champ = None
        cand_m = champ_m = None
        env = None
        status = "DONE"
        primary = self.result.primary[project.name]
        verdict = result.verdict if result is not None else None
        if result is not None:
            env = result.environment
            cand = (result.candidate or {}).get("version")
            champ = (result.champion or {}).get("version")
            if result.champion_moved:
                status = "PROMOTED"
        if verdict:
            row = verdict.get("comparison", {}).get(primary, {})
            cand_m, champ_m = row.get("candidate"), row.get("champion")
            champ = verdict.get("champion_version", champ)
            status = verdict["status"] + (" -> champion" if result is not None and result.champion_moved else "")
        elif result is not None and result.candidate:
            cand_m = (result.candidate.get("metrics") or {}).get(primary)
        if code == 3:
            status = "FAIL (exit 3)"
        elif code == 4:
            status = f"{verdict['status'] if verdict else 'PASS'} -> waiting (exit 4)"
        return Decision(
            self.result.models[project.name],
            label,
            env,
            cand,
            champ,
            cand_m,
            champ_m,
            status,
            code,
            seconds,
            project=project.name,
        )

    def change(self, branch: str, message: str, edit: Callable[[], None]) -> None:
        from promoter import gitops

        gitops.checkout(self.repo, "main")
        gitops.checkout(self.repo, branch, create=True)
        edit()
        gitops.commit_all(self.repo, message)

    def pull_request_and_merge(self, project: Project, branch: str, number: int) -> Decision:
        """The PR's staging run, the fast-forward merge and the merge's staging run; returns the merge's row."""
        from promoter import gitops

        self.replay(
            project,
            f"PR #{number} {branch} -> main",
            kind="pull_request",
            source_branch=branch,
            target_branch="main",
            pr_number=number,
        )
        gitops.checkout(self.repo, "main")
        gitops.merge_ff(self.repo, branch)
        return self.replay(project, f"merge #{number} into main", kind="push", branch="main")

    def cut_and_release(self, project: Project, branch: str, *, force_reason: str | None = None) -> Decision:
        from promoter import config
        from promoter.app import release

        settings = config.load(project.config_dir, None)
        staging = config.load(project.config_dir, settings.promotion.pull_request_fallback)
        readiness = None if force_reason else release.mlflow_readiness(staging, repo=str(self.repo))
        cut = release.cut_release(
            str(self.repo),
            source="main",
            name=branch,
            force=bool(force_reason),
            reason=force_reason,
            readiness=readiness,
            settings=settings,
            ticket=DEMO_TICKET,
            ticket_policy=config.load(project.config_dir, settings.promotion.prod_environment)
            .promotion.approval(settings.promotion.prod_environment)
            .change_ticket,
        )
        self.say(
            f"\n$ promote --project {project.name} cut-release --name {branch} --ticket {DEMO_TICKET}"
            + (" --force" if force_reason else "")
        )
        self.say(f"    {cut.branch} + tag {cut.tag} at {cut.sha[:12]} ({cut.readiness})")
        decision = self.replay(project, f"release {cut.branch}", kind="push", branch=cut.branch)
        if decision.executed and "score" in decision.executed and decision.exit_code == 0:
            self.score_dates[project.name] += timedelta(days=1)
        if decision.exit_code == 4 and decision.candidate is not None and decision.verdict.startswith("NEEDS"):
            # the policy sends a marginal win to a person: the release manager signs it off (a run
            # that waits for any other reason, e.g. a hold after a rollback, is left waiting)
            from promoter.app import decisions

            env = settings.promotion.prod_environment
            action = None
            for who in _one_member_per_role(settings.promotion.approval(env)):
                # as the approval job of the protected prod environment runs it: the platform
                # authenticated the actor, so no --by (a typed name would not count)
                action = decisions.approve(
                    project.config_dir,
                    env,
                    decision.candidate,
                    reason="reviewed the gate report",
                    environ={"GITHUB_ACTIONS": "true", "GITHUB_ACTOR": who},
                )
                self.say(
                    f"\n$ GITHUB_ACTOR={who} promote --project {project.name} approve --env {env} "
                    f"--model {decision.model} --version {decision.candidate}"
                )
                self.say(f"    {action.message}")
            if action is not None and action.champion_moved:
                decision.verdict = "NEEDS_APPROVAL -> approved -> champion"
                decision.champion_after = self._champion(project, env)
                self.score_dates[project.name] += timedelta(days=1)
        return decision

    def rollback(self, project: Project, reason: str) -> Decision:
        """``promote rollback`` of the project's prod champion (to the ``previous`` alias), as a row."""
        from promoter import config
        from promoter.app import decisions

        started = time.monotonic()
        env = config.load(project.config_dir, None).promotion.prod_environment
        model = self.result.models[project.name]
        before = self._champion(project, env)
        self.say(
            f"\n$ promote --project {project.name} rollback --env {env} --model {model} "
            f"--by oncall.engineer --reason '{reason}'"
        )
        action = decisions.rollback(project.config_dir, env, "oncall.engineer", reason)
        self.say(f"    {action.message}")
        after = self._champion(project, env)
        decision = Decision(
            model,
            f"rollback {env} ({reason})",
            env,
            after,
            before,
            None,
            None,
            f"ROLLED_BACK v{before} -> v{after}, hold",
            0,
            time.monotonic() - started,
            planned=["rollback"],
            executed=["rollback"],
            champion_after=after,
            project=project.name,
        )
        self.result.decisions.append(decision)
        return decision

    # -------------------------------------------------------------- the story
    def story(self, story: Story = "full") -> None:
        repo = self.repo
        if story == "monitoring":  # readmission's first champion, then post-market surveillance
            reason = "demo: the monitoring story releases main without waiting for a staging build"
            self.cut_and_release(READMISSION, READMISSION_RELEASES[0], force_reason=reason)
            self.monitoring_story(READMISSION)
            return
        # 1. HROB's first champion
        self.change(
            "feature/hrob-baseline",
            "HROB: tune the baseline search",
            lambda: (repo / "NOTES.md").write_text("HROB baseline: clinical groups only.\n"),
        )
        self.pull_request_and_merge(HROB, "feature/hrob-baseline", 1)
        self.cut_and_release(HROB, HROB_RELEASES[0])
        # 2. HROB: social determinants added, promoted
        self.change(
            "feature/hrob-sdoh",
            "HROB: add the social-determinant feature groups",
            lambda: _selection(repo, HROB, groups=CLINICAL_GROUPS + SDOH_GROUPS),
        )
        self.pull_request_and_merge(HROB, "feature/hrob-sdoh", 2)
        self.cut_and_release(HROB, HROB_RELEASES[1])
        # 3. an incident: HROB goes back to version 1 and its automatic promotion is held
        self.rollback(HROB, "outreach list incident INC-7")
        # 4. readmission, in the same repository and registry: dev, staging, its first prod champion
        self.change(
            "feature/readmission-baseline",
            "Readmission: the baseline model on the index stay",
            lambda: (repo / "models" / "readmission" / "NOTES.md").write_text("Baseline: the index stay only.\n"),
        )
        self.replay(
            READMISSION, "push feature/readmission-baseline", kind="push", branch="feature/readmission-baseline"
        )
        self.pull_request_and_merge(READMISSION, "feature/readmission-baseline", 3)
        self.cut_and_release(READMISSION, READMISSION_RELEASES[0])
        # 5. post-market surveillance of readmission's champion, day by day
        self.monitoring_story(READMISSION)
        if story == "short":
            return
        # 6. HROB: the clinical groups dropped; the gate refuses it against the rolled-back champion
        self.change(
            "feature/hrob-drop-clinical",
            "HROB: drop the clinical feature groups",
            lambda: _selection(repo, HROB, groups=list(SDOH_GROUPS)),
        )
        merge = self.pull_request_and_merge(HROB, "feature/hrob-drop-clinical", 4)
        reason = None
        if merge.exit_code != 0:
            reason = "demo: release the SDOH-only model anyway, to show the prod gate refusing it"
        self.cut_and_release(HROB, HROB_RELEASES[2], force_reason=reason)
        # 7. readmission: prior utilisation and the social context added, promoted
        self.change(
            "feature/readmission-history",
            "Readmission: add prior utilisation and the social context",
            lambda: _selection(repo, READMISSION, groups=READMISSION_CLINICAL + READMISSION_HISTORY),
        )
        self.pull_request_and_merge(READMISSION, "feature/readmission-history", 5)
        self.cut_and_release(READMISSION, READMISSION_RELEASES[1])

    # -------------------------------------------------------------- monitoring
    def monitoring_story(self, project: Project) -> None:
        """Four daily runs of the schedule (score, surveillance, report) on readmission's champion."""
        from promoter import config
        from promoter.app import data

        base = config.load(project.config_dir, None)
        env = base.promotion.prod_environment
        outcomes = config.load(project.config_dir, env).monitoring.outcomes
        delay = outcomes.label_delay_days if outcomes is not None else 3
        first = self.score_dates[project.name]
        if first + timedelta(days=max(delay, 2) + 1) > self.today:
            raise errors.InvalidInput(
                f"the monitoring story needs {max(delay, 2) + 1} days before today; "
                f"{project.name}'s label delay is {delay} days (MONITORING_DAYS is {MONITORING_DAYS})"
            )
        self.daily(project, first, "a stable day: the population the champion trained on")
        if outcomes is not None:
            info = data.write_outcomes(project.config_dir, env, snapshot_date=first, seed=self.seed)
            self.say(
                f"\n$ promote --project {project.name} data outcomes --snapshot-date {first}"
                f"\n    {info['rows']:,} outcomes of {first}'s discharges ({info['positives']:,} readmitted), "
                f"recorded {info['first_outcome']} .. {info['last_outcome']}"
            )
        self.regenerate(project, first + timedelta(days=1), shift=MONITOR_SHIFT)
        self.daily(project, first + timedelta(days=1), "a frailer population arrives")
        day = first + timedelta(days=max(delay, 2))
        self.regenerate(project, day, shift=MONITOR_SHIFT)
        self.daily(project, day, f"{first}'s outcomes have matured ({delay} days)")
        self.daily(project, day + timedelta(days=1), "still drifted: the retrain is pending")

    def regenerate(self, project: Project, day: date, *, shift: float) -> None:
        """A new extract of the project's population on ``day`` (drifted by ``shift``), and its gold."""
        from promoter import config
        from promoter.app import data

        env = config.load(project.config_dir, None).promotion.prod_environment
        settings = config.load(project.config_dir, env)
        info = synthetic_readmission.generate(settings, self.discharges, self.seed + 1, day, shift)
        self.say(
            f"\n$ promote --project {project.name} data generate --dataset readmission --snapshot-date {day} "
            f"--shift {shift:g}\n    {info['rows']:,} discharges, {info['prevalence']:.1%} readmitted"
        )
        data.build_features(project.config_dir, env, check_first=True)

    def daily(self, project: Project, day: date, label: str) -> MonitoringDay:
        """The schedule's run for ``day``: score with the champion, then monitor it."""
        from promoter.app import prepare, run, sources

        self.say(f"\n=== {self.result.models[project.name]}: daily run {day} ({label})")
        event = sources.from_local(self.repo, kind="schedule")
        prepared = prepare.prepare(event, project.config_dir, self.repo)
        self.say(f"    -> {prepared.plan.environment}: " + ", ".join(prepared.plan.step_names()))
        result = run.execute(prepared, repo_path=self.repo, spark=self.spark, score_date=day)
        step = next(s for s in result.steps if s.name == "surveillance")
        summary = result.monitoring or {}
        performance = summary.get("performance") or []
        out = MonitoringDay(
            project.name,
            label,
            day,
            summary.get("verdict", "-"),
            step.detail,
            list(summary.get("alerts", [])),
            dict(summary.get("retrain") or {}),
            performance[-1] if performance else None,
            planned=prepared.plan.step_names(),
            executed=result.executed,
        )
        self.result.monitoring.append(out)
        self.say(f"    {out.verdict}: {out.summary}")
        for alert in out.alerts:
            self.say(f"      alert: {alert}")
        if out.realised:
            groups = next(iter((out.realised.get("subgroups") or {}).items()), None)
            if groups:
                col, values = groups
                per = ", ".join(f"{g} {_fmt(m.get('roc_auc'))}" for g, m in sorted(values.items()))
                self.say(f"      realised AUC by {col} ({out.realised['score_date']}): {per}")
        if out.retrain.get("request"):
            self.say(f"      retrain requested: {out.retrain['reason']}")
        elif out.retrain.get("suppressed"):
            self.say(f"      {out.retrain['suppressed']}")
        self.score_dates[project.name] = day + timedelta(days=1)
        return out

    def finish(self) -> None:
        from pipelines import score
        from promoter import config

        for project in PROJECTS:
            base = config.load(project.config_dir, None)
            prod = config.load(project.config_dir, base.promotion.prod_environment)
            self.result.champions[project.name] = self._champion(project, prod.env)
            self.result.scored[project.name] = score.predictions_summary(prod)


def table(result: DemoResult) -> str:
    """The closing table of every decision, in the order they happened."""
    head = ("model", "env", "event", "planned steps", "decision", "version", "champion", "exit", "metric")
    rows = [head]
    for d in result.decisions:
        primary = result.primary.get(d.project, "")
        metric = "-"
        if d.candidate_metric is not None:
            metric = f"{primary} {_fmt(d.candidate_metric)}"
            if d.champion_metric is not None:
                metric += f" vs {_fmt(d.champion_metric)}"
        rows.append(
            (
                d.model,
                d.environment or "-",
                d.event,
                " ".join(d.planned) or "-",
                d.verdict,
                f"v{d.candidate}" if d.candidate else "-",
                f"v{d.champion_after}" if d.champion_after else "-",
                str(d.exit_code),
                metric,
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(
    workdir: str | Path = DEMO_DIR,
    members: int = 6_000,
    discharges: int = 10_000,
    seed: int = 7,
    max_evals: int = 3,
    say: Callable[[str], None] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    story: Story = "full",
) -> DemoResult:
    """Run the two-model demo story; returns what happened (the e2e test asserts on it).

    Args:
        workdir: scratch folder; its ``model-repo/`` repository is created anew.
        members: HROB's synthetic population.
        discharges: the readmission model's synthetic discharges.
        seed: seed of both synthetic datasets.
        max_evals: Hyperopt trials per training.
        say: where progress lines go (default: stdout).
        overrides: config files to write over the projects', by path in the repository, e.g.
            ``{"configs/prod/promotion.yml": {...}}`` (default: :data:`DEMO_HROB_POLICY` for HROB).
        story: ``full``, ``short`` (up to readmission's first release, after HROB's rollback) or
            ``monitoring`` (readmission's first release and its monitoring days only).
    """
    say = say or (lambda m: print(m, flush=True))
    started = time.monotonic()
    cwd = os.getcwd()
    workdir = Path(workdir).resolve()
    demo = Demo(workdir, members, discharges, seed, max_evals, say, overrides)
    try:
        demo.setup()
        demo.story(story)
        demo.finish()
    finally:
        os.chdir(cwd)
    demo.result.seconds = time.monotonic() - started
    res = demo.result
    say("\n" + table(res))
    say("")
    for project in PROJECTS:
        model = res.models.get(project.name, project.name)
        for day, info in sorted(res.scored.get(project.name, {}).items()):
            say(f"{model}: scored {info['rows']:,} rows on {day} with version {info['model_version']}")
        say(f"{model}: prod champion version {res.champions.get(project.name)}")
    for m in res.monitoring:
        say(f"{res.models.get(m.project, m.project)} monitoring {m.score_date}: {m.verdict}: {m.summary}")
    say(f"finished in {res.seconds / 60:.1f} min ({res.seconds:.0f} s)")
    say(f"\nopen the MLflow UI on the demo's store:\n  mlflow ui --backend-store-uri {res.mlflow_uri}")
    return res
