"""How often does the prod gate promote a challenger that is worse, equal or better?

Simulates paired evaluations (champion and challenger scored on the same rows) under a
binormal model and runs the real ``gate.decide`` with the prod policy from
``configs/base/promotion.yml`` (+ ``configs/prod``). Prints, per scenario, the share of pairs
the gate passed (automatic promotion), sent to approval, or failed: the false-promotion rate
for equal or worse challengers and the power for better ones.

Model: within each class the latent score is N(0, 1) for negatives and N(mu, 1) for
positives, so AUC = Phi(mu / sqrt 2). Champion and challenger share a noise term, giving a
within-class correlation ``rho`` between their scores (two models trained on the same data
rank patients alike). Scores are turned into calibrated probabilities
``P(y=1 | x) = sigmoid(logit(prevalence) + mu x - mu^2 / 2)``, so floors on Brier and ECE
behave as for a well-calibrated model. Every row also gets a race/ethnicity, payer, region
and age band at random, and the per-group AUCs feed the fairness rules as the real
evaluation would.

Run::

    .venv/bin/python bench/gate_power.py                 # 200 pairs per scenario
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
from pathlib import Path
from statistics import NormalDist

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promoter import stats  # noqa: E402
from promoter.config import load  # noqa: E402
from promoter.core.gate import ModelEvaluation, decide  # noqa: E402

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
) -> ModelEvaluation:
    sub: dict[str, dict[str, dict[str, float]]] = {}
    for column, codes in groups.items():
        sub[column] = {}
        for code, name in enumerate(names[column]):
            mask = codes == code
            sub[column][name] = {"roc_auc": stats.roc_auc(labels[mask], scores[mask]), "n": int(mask.sum())}
    return ModelEvaluation(
        version=version,
        metrics=stats.compute_metrics(labels, scores),
        subgroup_metrics=sub,
        scores=scores,
        labels=labels,
        ids=ids,
    )


def simulate_pair(
    rng: np.random.Generator,
    rows: int,
    prevalence: float,
    champ_auc: float,
    delta: float,
    rho: float,
    ids: tuple[str, ...],
):
    y = (rng.random(rows) < prevalence).astype(np.int8)
    mu0, mu1 = mu_for_auc(champ_auc), mu_for_auc(champ_auc + delta)
    shared = rng.standard_normal(rows)
    own0, own1 = rng.standard_normal((2, rows))
    x0 = mu0 * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own0
    x1 = mu1 * y + math.sqrt(rho) * shared + math.sqrt(1 - rho) * own1
    groups = {col: rng.choice(len(names), size=rows, p=probs) for col, (names, probs) in SUBGROUPS.items()}
    names = {col: names for col, (names, _) in SUBGROUPS.items()}
    champion = evaluation(1, y, probabilities(x0, mu0, prevalence), ids, groups, names)
    challenger = evaluation(2, y, probabilities(x1, mu1, prevalence), ids, groups, names)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="simulated pairs per scenario (default 200)")
    parser.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default: the prod policy's)")
    parser.add_argument("--rows", type=int, default=20_000, help="evaluation rows (default 20000)")
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
        help="true AUC of challenger minus champion, one scenario each",
    )
    args = parser.parse_args(argv)

    settings = load(ROOT / "configs", "prod", environ={})
    policy = settings.policy
    if args.resamples is not None:
        policy = policy.model_copy(
            update={"significance": policy.significance.model_copy(update={"resamples": args.resamples})}
        )
    sig = policy.significance
    print(
        f"prod policy: primary {policy.primary_metric} ({policy.direction}), "
        f"min_absolute_improvement {policy.min_absolute_improvement}, "
        f"min_relative_improvement {policy.min_relative_improvement}, significance "
        f"{'on' if sig.enabled else 'off'} ({sig.confidence:.0%} two-sided, {sig.resamples} resamples), "
        f"marginal: {policy.marginal}, mode: {policy.mode}"
    )
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
