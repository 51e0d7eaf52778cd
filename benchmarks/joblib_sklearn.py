"""scikit-learn's GridSearchCV on joblib's loky backend and on the poolwise backend (#17).

What it measures: the wall time of ``GridSearchCV(RandomForestClassifier(), grid, cv=3,
n_jobs=N).fit(X, y)`` on the digits dataset, a grid whose forests have 10 to 200 trees
(fit times spread over ~20x: a heavy tail at the end of the search). Each backend is timed
cold (its workers started inside the timed region: loky's reusable executor is shut down
first, poolwise gets a new backend) and warm (a second fit on the same workers). Every
search must find the same best parameters and scores as loky's, or its row says WRONG.

    uv run --group bench python benchmarks/joblib_sklearn.py [--n-jobs 2] [--repeat 1]

How to read it: ``x loky`` is the time over loky's in the same state (cold or warm); one
run per cell on a shared machine is noisy: treat differences under ~10% as ties.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import joblib
from joblib.externals.loky import get_reusable_executor
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV

import poolwise
import poolwise.joblib

GRID = {"n_estimators": [10, 50, 200], "max_depth": [4, 12], "max_features": ["sqrt", 0.5]}


def search(n_jobs: int) -> tuple[float, Any, list[float]]:
    X, y = load_digits(return_X_y=True)
    found = GridSearchCV(RandomForestClassifier(random_state=0), GRID, cv=3, n_jobs=n_jobs).fit(
        X, y
    )
    return found.best_score_, found.best_params_, list(found.cv_results_["mean_test_score"])


def timed(backend: Any, n_jobs: int) -> tuple[float, float, Any]:
    """Cold then warm wall time of one search each, on ``backend``, and the last result."""
    with joblib.parallel_config(backend=backend):
        started = time.perf_counter()
        search(n_jobs)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        result = search(n_jobs)
        warm = time.perf_counter() - started
    return cold, warm, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="keep the best of N runs")
    args = parser.parse_args()
    print(
        f"GridSearchCV, {len(GRID['n_estimators']) * 4} candidates x 3 folds, "
        f"n_jobs={args.n_jobs}, {poolwise.cpus()} usable CPUs; seconds, best of {args.repeat}"
    )
    rows: dict[str, tuple[float, float, Any]] = {}
    for name in ("loky", "poolwise auto", "poolwise processes", "poolwise threads"):
        best: tuple[float, float, Any] | None = None
        for _ in range(args.repeat):
            if name == "loky":
                get_reusable_executor().shutdown(wait=True)
                run = timed("loky", args.n_jobs)
            else:
                backend = poolwise.joblib.PoolwiseBackend(name.split()[1])
                run = timed(backend, args.n_jobs)
                if backend.decision is not None:
                    print(f"  {name} chose {backend.decision.mode}: {backend.decision.reasons[-1]}")
                backend.close()
            best = run if best is None else (min(best[0], run[0]), min(best[1], run[1]), run[2])
        assert best is not None
        rows[name] = best
    loky_cold, loky_warm, expected = rows["loky"]
    print(f"{'backend':<20} {'cold s':>8} {'x loky':>7} {'warm s':>8} {'x loky':>7}")
    for name, (cold, warm, result) in rows.items():
        note = "" if result == expected else "  WRONG: not loky's scores"
        print(
            f"{name:<20} {cold:8.2f} {cold / loky_cold:7.2f} {warm:8.2f} "
            f"{warm / loky_warm:7.2f}{note}"
        )


if __name__ == "__main__":
    main()
