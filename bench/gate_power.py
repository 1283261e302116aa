"""How often does the prod gate promote a challenger that is worse, equal or better? And how
often do its fairness rules fail groups that perform the same, or miss a group that got worse?

Simulates paired evaluations (champion and challenger scored on the same rows) under a
binormal model and runs the real ``gate.decide`` with the prod policy from
``configs/base/promotion.yml`` (+ ``configs/prod``). Prints, per scenario, the share of pairs
the gate passed (automatic promotion), sent to approval, or failed: the false-promotion rate
for equal or worse challengers and the power for better ones.

Fairness tables (``--tables fairness``): (a) every group of every subgroup column performs
the same, for candidate and champion: the share of datasets on which the fairness rules
FAIL (goal: at most 5%), ask a person (NEEDS_APPROVAL) or PASS, next to the share the old
point-estimate rule (no per-row groups) FAILs on the same data; at 20,000 and 600 rows, and
for a first version on 600 rows (the gap rule only). (b) the candidate's AUC is 0.05 lower
than the champion's in one race/ethnicity group of 10% of the rows: the share of datasets on
which ``fairness.regression.race_ethnicity`` catches it (FAIL or NEEDS_APPROVAL, apart) or
misses it. These runs switch the significance rule off to save time: the fairness intervals
use its resamples, seed and confidence either way, and no other rule is counted.

Model: within each class the latent score is N(0, 1) for negatives and N(mu, 1) for
positives, so AUC = Phi(mu / sqrt 2). Champion and challenger share a noise term, giving a
within-class correlation ``rho`` between their scores (two models trained on the same data
rank patients alike). Scores are turned into calibrated probabilities
``P(y=1 | x) = sigmoid(logit(prevalence) + mu x - mu^2 / 2)``, so floors on Brier and ECE
behave as for a well-calibrated model. Every row also gets a race/ethnicity, payer, region
and age band at random, and the per-group AUCs feed the fairness rules as the real
evaluation would.

Run::

    .venv/bin/python bench/gate_power.py                 # the fairness tables, 200 datasets each
    .venv/bin/python bench/gate_power.py --tables significance fairness   # + the promotion table
    .venv/bin/python bench/gate_power.py --pairs 50 --resamples 200 --jobs 1
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promoter.config import load  # noqa: E402
from promoter.core import stats  # noqa: E402
from promoter.core.gate import ModelEvaluation, Verdict, decide  # noqa: E402

SUBGROUPS: dict[str, tuple[list[str], list[float]]] = {
    "race_ethnicity": (["white", "black", "hispanic", "asian", "other"], [0.45, 0.25, 0.15, 0.10, 0.05]),
    "payer_type": (["medicaid", "commercial", "medicare"], [0.50, 0.35, 0.15]),
    "region": (["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25]),
    "age_band": (["<20", "20-29", "30-39", "40+"], [0.20, 0.30, 0.30, 0.20]),
}


def mu_for_auc(auc: float) -> float:
    """Binormal separation giving ``auc`` with unit variances."""
    return math.sqrt(2.0) * NormalDist().inv_cdf(auc)


def probabilities(latent: np.ndarray, mu: float, prevalence: float) -> np.ndarray:
    logit = math.log(prevalence / (1 - prevalence)) + mu * latent - mu * mu / 2
    return 1.0 / (1.0 + np.exp(-logit))


def evaluation(
    version: int,
    labels: np.ndarray,
    scores: np.ndarray,
    ids: tuple[str, ...],
    groups: dict[str, np.ndarray],
    names: dict[str, list[str]],
    *,
    row_groups: bool = True,
) -> ModelEvaluation:
    sub: dict[str, dict[str, dict[str, float]]] = {}
    for column, codes in groups.items():
        sub[column] = {}
        for code, name in enumerate(names[column]):
            mask = codes == code
            if mask.any():
                sub[column][name] = {"roc_auc": stats.roc_auc(labels[mask], scores[mask]), "n": int(mask.sum())}
    return ModelEvaluation(
        version=version,
        metrics=stats.compute_metrics(labels, scores),
        subgroup_metrics=sub,
        scores=scores,
        labels=labels,
        ids=ids,
        row_groups={col: np.asarray(names[col])[codes] for col, codes in groups.items()} if row_groups else None,
    )


def simulate_pair(
    rng: np.random.Generator,
    rows: int,
    prevalence: float,
    champ_auc: float,
    delta: float,
    rho: float,
    ids: tuple[str, ...],
    *,
    worse_group: tuple[str, str, float] | None = None,
    row_groups: bool = True,
):
    """A (challenger, champion) pair; ``worse_group`` = (column, group, AUC drop of the challenger there)."""
    y = (rng.random(rows) < prevalence).astype(np.int8)
    shared = rng.standard_normal(rows)
    own0, own1 = rng.standard_normal((2, rows))
    groups = {col: rng.choice(len(names), size=rows, p=probs) for col, (names, probs) in SUBGROUPS.items()}
    names = {col: names for col, (names, _) in SUBGROUPS.items()}
    mu0 = mu_for_auc(champ_auc)
    mu1: float | np.ndarray = mu_for_auc(champ_auc + delta)
    if worse_group is not None:
        column, group, drop = worse_group
        inside = groups[column] == names[column].index(group)
        mu1 = np.where(inside, mu_for_auc(champ_auc + delta - drop), mu1)
    x0 = mu0 * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own0
    x1 = mu1 * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own1
    champion = evaluation(1, y, probabilities(x0, mu0, prevalence), ids, groups, names, row_groups=row_groups)
    challenger = evaluation(2, y, probabilities(x1, mu1, prevalence), ids, groups, names, row_groups=row_groups)
    return challenger, champion


def run_pairs(task) -> tuple[Counter, Counter, list[float], float, float]:
    """Simulate and decide ``pairs`` pairs for one scenario (runs in a worker process)."""
    policy, delta, pairs, rows, prevalence, champ_auc, rho, seed = task
    rng = np.random.default_rng(seed)
    ids = tuple(f"r{i:06d}" for i in range(rows))
    counts: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    observed: list[float] = []
    seconds = 0.0
    cpu0 = time.process_time()
    for _ in range(pairs):
        challenger, champion = simulate_pair(rng, rows, prevalence, champ_auc, delta, rho, ids)
        t0 = time.perf_counter()
        verdict = decide(policy, challenger, champion, phi_found=[])
        seconds += time.perf_counter() - t0
        counts[verdict.status] += 1
        failed.update(r.rule for r in verdict.failed)
        observed.append(verdict.bootstrap.difference if verdict.bootstrap else float("nan"))
    print(f"  dAUC {delta:+.3f}: {pairs} pairs done", file=sys.stderr, flush=True)
    return counts, failed, observed, seconds, time.process_time() - cpu0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def significance_table(args: argparse.Namespace, policy) -> None:
    """The promotion table: PASS / NEEDS_APPROVAL / FAIL by true AUC difference (the whole gate)."""
    sig = policy.significance
    print()
    print(
        f"simulation: {args.rows} rows, prevalence {args.prevalence:.0%}, champion AUC {args.champion_auc}, "
        f"rho {args.rho}, {args.pairs} pairs per scenario, seed {args.seed}"
    )
    started = time.perf_counter()
    cpu_started = time.process_time()
    # one task per (scenario, slice of pairs), each with its own child seed: the same
    # --seed and --jobs give the same table
    children = np.random.SeedSequence(args.seed).spawn(len(args.deltas) * args.jobs)
    tasks = []
    for i, delta in enumerate(args.deltas):
        for j in range(args.jobs):
            pairs = args.pairs // args.jobs + (1 if j < args.pairs % args.jobs else 0)
            if pairs:
                tasks.append(
                    (
                        policy,
                        delta,
                        pairs,
                        args.rows,
                        args.prevalence,
                        args.champion_auc,
                        args.rho,
                        children[i * args.jobs + j],
                    )
                )
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(run_pairs, tasks))
    else:
        results = [run_pairs(t) for t in tasks]
    table = []
    decide_seconds, decides, worker_cpu = 0.0, 0, 0.0
    for delta in args.deltas:
        counts: Counter[str] = Counter()
        failed_rules: Counter[str] = Counter()
        observed: list[float] = []
        for task, (c, f, o, secs, cpu) in zip(tasks, results):
            if task[1] != delta:
                continue
            counts.update(c)
            failed_rules.update(f)
            observed += o
            decide_seconds += secs
            decides += len(o)
            worker_cpu += cpu
        table.append((delta, counts, failed_rules, float(np.nanmean(observed))))

    wall = time.perf_counter() - started
    print()
    print(
        "| true dAUC | kind | pairs | mean obs dAUC | PASS (auto-promote) | 95% CI | NEEDS_APPROVAL | FAIL | "
        "most frequent failed rules |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for delta, counts, failed_rules, mean_obs in table:
        n = sum(counts.values())
        kind = "false promotion" if delta <= 0 else "power"
        lo, hi = wilson(counts["PASS"], n)
        top = ", ".join(f"{rule} {k}" for rule, k in failed_rules.most_common(3)) or "-"
        print(
            f"| {delta:+.3f} | {kind} | {n} | {mean_obs:+.4f} | {counts['PASS'] / n:.1%} | "
            f"{lo:.1%}-{hi:.1%} | {counts['NEEDS_APPROVAL'] / n:.1%} | {counts['FAIL'] / n:.1%} | {top} |"
        )
    print()
    cpu = worker_cpu if args.jobs > 1 else time.process_time() - cpu_started
    print(
        f"wall time {wall:.1f} s ({args.jobs} process(es), {cpu:.0f} s CPU) for {decides} decisions; "
        f"gate.decide {decide_seconds / decides * 1000:.0f} ms each "
        f"({args.rows} rows x {sig.resamples} resamples, incl. bootstrap)"
    )

    # the figure the issue asks about: one 20,000-row x 1,000-resample paired AUC bootstrap
    challenger, champion = simulate_pair(
        np.random.default_rng(0),
        20_000,
        args.prevalence,
        args.champion_auc,
        0.0,
        args.rho,
        tuple(f"r{i:06d}" for i in range(20_000)),
    )
    t0 = time.perf_counter()
    stats.paired_bootstrap("roc_auc", challenger.labels, challenger.scores, champion.scores, resamples=1000, seed=1)
    print(f"paired AUC bootstrap, 20000 rows x 1000 resamples: {time.perf_counter() - t0:.2f} s")


# --------------------------------------------------------------------------- fairness tables

FAMILIES = (("gap", "fairness.gap."), ("regression", "fairness.regression."), ("any fairness rule", "fairness."))


def family_outcome(verdict: Verdict, prefix: str) -> str | None:
    """FAIL if a rule of the family failed outright, NEEDS_APPROVAL if one was undecided, else PASS."""
    reasons = [r for r in verdict.reasons if r.rule.startswith(prefix)]
    if not reasons:
        return None
    if any(not r.passed and not r.undecided for r in reasons):
        return "FAIL"
    if any(r.undecided for r in reasons):
        return "NEEDS_APPROVAL"
    return "PASS"


def run_fairness(task) -> tuple[Counter, float, int]:
    """Simulate and judge ``datasets`` datasets of one fairness scenario (runs in a worker process)."""
    policy, rows, with_champion, worse, datasets, prevalence, champ_auc, rho, seed = task
    rng = np.random.default_rng(seed)
    ids = tuple(f"r{i:06d}" for i in range(rows))
    counts: Counter = Counter()
    seconds = 0.0
    for _ in range(datasets):
        challenger, champion = simulate_pair(rng, rows, prevalence, champ_auc, 0.0, rho, ids, worse_group=worse)
        champ = champion if with_champion else None
        t0 = time.perf_counter()
        judged = decide(policy, challenger, champ, phi_found=[])
        seconds += time.perf_counter() - t0
        point = decide(
            policy,
            replace(challenger, row_groups=None),
            None if champ is None else replace(champ, row_groups=None),
            phi_found=[],
        )
        for name, prefix in FAMILIES:
            counts[(name, "interval", family_outcome(judged, prefix))] += 1
            counts[(name, "point", family_outcome(point, prefix))] += 1
    return counts, seconds, datasets


def _share(counts: Counter, key: tuple, n: int) -> str:
    k = counts[key]
    lo, hi = wilson(k, n)
    return f"{k / n:.1%} ({lo:.1%}-{hi:.1%})"


def fairness_tables(args: argparse.Namespace, policy) -> None:
    """(a) FAIL rate with equal groups; (b) how often a 0.05 AUC drop in a 10% group is caught."""
    fair = policy.fairness
    # the significance rule does not change a fairness outcome (the intervals take its settings
    # either way): switch it off to save its bootstrap
    quiet = policy.model_copy(update={"significance": policy.significance.model_copy(update={"enabled": False})})
    race = quiet.model_copy(update={"fairness": fair.model_copy(update={"subgroups": ["race_ethnicity"]})})
    worse = ("race_ethnicity", "asian", 0.05)
    scenarios = []  # (table, rows, with_champion, worse_group, policy)
    for rows in args.fairness_rows:
        scenarios.append(("same", rows, True, None, quiet))
    for rows in args.fairness_rows:
        if rows <= 1_000:
            scenarios.append(("same", rows, False, None, quiet))
    for rows in args.fairness_rows:
        scenarios.append(("worse", rows, True, worse, race))

    print()
    print(
        f"fairness simulation: prevalence {args.prevalence:.0%}, AUC {args.champion_auc} in every group "
        f"(candidate and champion), rho {args.rho}, {args.pairs} datasets per scenario, seed {args.seed}; "
        f"intervals: {policy.significance.resamples} resamples, {policy.significance.confidence:.0%}, "
        f"seed {policy.significance.seed}"
    )
    started = time.perf_counter()
    children = np.random.SeedSequence([args.seed, 14]).spawn(len(scenarios) * args.jobs)
    tasks, owner = [], []
    for i, (_, rows, with_champion, worse_group, pol) in enumerate(scenarios):
        for j in range(args.jobs):
            datasets = args.pairs // args.jobs + (1 if j < args.pairs % args.jobs else 0)
            if datasets:
                tasks.append(
                    (
                        pol,
                        rows,
                        with_champion,
                        worse_group,
                        datasets,
                        args.prevalence,
                        args.champion_auc,
                        args.rho,
                        children[i * args.jobs + j],
                    )
                )
                owner.append(i)
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(run_fairness, tasks))
    else:
        results = [run_fairness(t) for t in tasks]
    merged = [(Counter(), 0.0, 0) for _ in scenarios]
    for i, (c, secs, n) in zip(owner, results):
        total, s, m = merged[i]
        total.update(c)
        merged[i] = (total, s + secs, m + n)

    print()
    print(
        f"(a) groups that truly perform the same: share of datasets per outcome "
        f"(95% CI); max_gap {fair.max_gap}, max_regression {fair.max_regression}, "
        f"{len(fair.subgroups)} subgroup columns"
    )
    print()
    print(
        "| rows | champion | rules | datasets | FAIL | NEEDS_APPROVAL | PASS | point-estimate rule FAIL | decide ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (table, rows, with_champion, _, _), (counts, secs, n) in zip(scenarios, merged):
        if table != "same":
            continue
        for name, _ in FAMILIES:
            if not with_champion and name == "regression":
                continue
            if (
                not counts[(name, "interval", "PASS")]
                + counts[(name, "interval", "FAIL")]
                + counts[(name, "interval", "NEEDS_APPROVAL")]
            ):
                continue
            print(
                f"| {rows} | {'yes' if with_champion else 'no (first version)'} | {name} | {n} | "
                f"{_share(counts, (name, 'interval', 'FAIL'), n)} | "
                f"{_share(counts, (name, 'interval', 'NEEDS_APPROVAL'), n)} | "
                f"{_share(counts, (name, 'interval', 'PASS'), n)} | "
                f"{_share(counts, (name, 'point', 'FAIL'), n)} | {secs / n * 1000:.0f} |"
            )
    print()
    print(
        f"(b) the candidate's AUC is {worse[2]} lower than the champion's in {worse[0]} = {worse[1]} "
        f"(10% of the rows), the same elsewhere: fairness.regression.{worse[0]} "
        f"(max_regression {fair.max_regression})"
    )
    print()
    print(
        "| rows | rows in the group | datasets | caught: FAIL | caught: NEEDS_APPROVAL | missed: PASS | "
        "point-estimate rule FAIL | decide ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (table, rows, _, _, _), (counts, secs, n) in zip(scenarios, merged):
        if table != "worse":
            continue
        key = "regression"
        print(
            f"| {rows} | ~{rows // 10} | {n} | {_share(counts, (key, 'interval', 'FAIL'), n)} | "
            f"{_share(counts, (key, 'interval', 'NEEDS_APPROVAL'), n)} | "
            f"{_share(counts, (key, 'interval', 'PASS'), n)} | "
            f"{_share(counts, (key, 'point', 'FAIL'), n)} | {secs / n * 1000:.0f} |"
        )
    print()
    print(f"fairness tables: wall time {time.perf_counter() - started:.1f} s ({args.jobs} process(es))")

    # the cost the issue asks about: the fairness rules of the shipped policy on 20,000 rows
    challenger, champion = simulate_pair(
        np.random.default_rng(0),
        20_000,
        args.prevalence,
        args.champion_auc,
        0.0,
        args.rho,
        tuple(f"r{i:06d}" for i in range(20_000)),
    )
    t0 = time.perf_counter()
    decide(quiet, challenger, champion, phi_found=[])
    groups = sum(len(challenger.subgroup_metrics[c]) for c in fair.subgroups)
    print(
        f"fairness rules, 20000 rows x {policy.significance.resamples} resamples x {groups} groups in "
        f"{len(fair.subgroups)} columns, candidate and champion: {time.perf_counter() - t0:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tables",
        nargs="+",
        choices=["significance", "fairness"],
        default=["fairness"],
        help="which tables to print (default: fairness; the significance table takes about 10 minutes)",
    )
    parser.add_argument("--pairs", type=int, default=200, help="simulated pairs (datasets) per scenario (default 200)")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default: the prod policy's)")
    parser.add_argument("--rows", type=int, default=20_000, help="evaluation rows of the significance table")
    parser.add_argument(
        "--fairness-rows", type=int, nargs="+", default=[20_000, 600], help="evaluation rows of the fairness tables"
    )
    parser.add_argument("--prevalence", type=float, default=0.10)
    parser.add_argument("--champion-auc", type=float, default=0.78)
    parser.add_argument("--rho", type=float, default=0.8, help="within-class score correlation")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default: up to 2)"
    )
    parser.add_argument(
        "--deltas",
        type=float,
        nargs="+",
        default=[-0.01, 0.0, 0.01, 0.02],
        help="true AUC of challenger minus champion, one scenario each (significance table)",
    )
    args = parser.parse_args(argv)

    settings = load(ROOT / "configs", "prod", environ={})
    policy = settings.policy
    if args.resamples is not None:
        policy = policy.model_copy(
            update={"significance": policy.significance.model_copy(update={"resamples": args.resamples})}
        )
    sig = policy.significance
    fair = policy.fairness
    print(
        f"prod policy: primary {policy.primary_metric} ({policy.direction}), "
        f"min_absolute_improvement {policy.min_absolute_improvement}, "
        f"min_relative_improvement {policy.min_relative_improvement}, significance "
        f"{'on' if sig.enabled else 'off'} ({sig.confidence:.0%} two-sided, {sig.resamples} resamples), "
        f"marginal: {policy.marginal}, mode: {policy.mode}"
    )
    print(
        f"fairness: {fair.metric} by {', '.join(fair.subgroups)}; max_gap {fair.max_gap}, "
        f"max_regression {fair.max_regression}, min_group_size {fair.min_group_size}"
    )
    if "significance" in args.tables:
        significance_table(args, policy)
    if "fairness" in args.tables:
        fairness_tables(args, policy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
