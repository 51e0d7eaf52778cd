"""scikit-learn's n_jobs= on the poolwise backend gives loky's scores (#17).

scikit-learn and SciPy have no wheels for free-threaded 3.13 here, so these run on the
GIL builds (3.11 in .ci/run); the backend's own tests run on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip(
    "sklearn",
    reason="scikit-learn is in the dev group, not installable on this Python "
    "(no free-threaded wheel): the joblib backend's own tests still run here",
)

from joblib import parallel_config
from joblib.externals.loky import get_reusable_executor
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

from poolwise.joblib import PoolwiseBackend

if TYPE_CHECKING:
    import numpy as np

MODES = ["processes", "threads", "auto"]


def _cross_val() -> np.ndarray:
    X, y = load_iris(return_X_y=True)
    return cross_val_score(LogisticRegression(max_iter=1000), X, y, cv=5, n_jobs=2)


def _grid_search() -> tuple[float, dict[str, object], list[float]]:
    X, y = load_breast_cancer(return_X_y=True)
    search = GridSearchCV(
        RandomForestClassifier(n_estimators=10, random_state=0),
        {"max_depth": [2, 4], "min_samples_leaf": [1, 5]},
        cv=3,
        n_jobs=2,
    ).fit(X, y)
    return search.best_score_, search.best_params_, list(search.cv_results_["mean_test_score"])


@pytest.fixture(scope="module")
def loky_scores() -> tuple[np.ndarray, tuple[float, dict[str, object], list[float]]]:
    with parallel_config(backend="loky"):
        scores = _cross_val(), _grid_search()
    # loky keeps its workers for 5 idle minutes; the leak checks count only ours.
    get_reusable_executor().shutdown(wait=True)
    return scores


@pytest.mark.parametrize("mode", MODES)
def test_cross_val_score_matches_loky(mode: str, loky_scores: tuple[np.ndarray, object]) -> None:
    backend = PoolwiseBackend(mode)
    try:
        with parallel_config(backend=backend):
            scores = _cross_val()
    finally:
        backend.close()
    assert list(scores) == list(loky_scores[0])


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_grid_search_matches_loky(mode: str, loky_scores: tuple[object, object]) -> None:
    backend = PoolwiseBackend(mode)
    try:
        with parallel_config(backend=backend):
            found = _grid_search()
    finally:
        backend.close()
    assert found == loky_scores[1]
    if mode == "auto":
        assert backend.decision is not None, "auto measured the first batches"


def test_a_random_forest_s_prefer_threads_is_honoured_by_auto() -> None:
    """RandomForest asks joblib for threads (prefer="threads"): auto takes the hint rather
    than measuring, and the forest is the one a single job grows."""
    X, y = load_iris(return_X_y=True)
    backend = PoolwiseBackend("auto")
    try:
        with parallel_config(backend=backend):
            forest = RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0).fit(X, y)
    finally:
        backend.close()
    assert backend.decision is None
    reference = RandomForestClassifier(n_estimators=8, n_jobs=1, random_state=0).fit(X, y)
    assert (forest.predict_proba(X) == reference.predict_proba(X)).all()
