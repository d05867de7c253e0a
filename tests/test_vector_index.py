"""The vector index backends and the query plan: approximate where it is safe, exact where
a filter makes it unsafe, and the filter always applied inside the search."""

from __future__ import annotations

import numpy as np
import pytest

from hikitsugi.bench.synth import mixed_vectors
from hikitsugi.config import Settings
from hikitsugi.index.vectors import backend_class, choose_backend, load_index, params_of
from hikitsugi.index.vectors import plan as vplan
from hikitsugi.index.vectors.base import VECTORS_FILE
from hikitsugi.index.vectors.exact import ExactIndex

N, D, K = 30_000, 384, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((600, D)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    vecs, _ = mixed_vectors(base, N, seed=1)
    queries, _ = mixed_vectors(base, 60, seed=2)
    return vecs, queries


@pytest.fixture(scope="module")
def settings():
    return Settings(ivf_nprobe=32, plan_restricted_max_rows=2_000, plan_min_selectivity=0.05)


@pytest.fixture(scope="module", params=["ivf-sq8", "hnsw"])
def ann(request, data, settings):
    return backend_class(request.param).build(data[0], params_of(settings))


def _recall(index, queries, mask, truth_index, search=None) -> float:
    hits = 0
    for q in queries:
        found = (search or index.search)(q, K, mask)
        if mask is not None:
            assert all(mask[r] for r in found), "a row the filter forbids came back"
        hits += len(set(found) & set(truth_index.search(q, K, mask)))
    return hits / (K * len(queries))


def test_auto_backend_is_exact_below_threshold_and_ann_above(settings) -> None:
    assert choose_backend("auto", 49_999, 50_000, "ivf-sq8") == "exact"
    assert choose_backend("auto", 50_000, 50_000, "ivf-sq8") == "ivf-sq8"
    assert choose_backend("hnsw", 10, 50_000, "ivf-sq8") == "hnsw"
    with pytest.raises(ValueError, match="HIKITSUGI_VECTOR_INDEX"):
        choose_backend("annoy", 10, 50_000, "ivf-sq8")


def test_unfiltered_ann_recall_and_exact_scores(ann, data) -> None:
    vecs, queries = data
    exact = ExactIndex(vecs)
    assert _recall(ann, queries, None, exact) >= 0.97
    found = ann.search(queries[0], K)
    assert np.allclose(list(found.values()), vecs[list(found)] @ queries[0], atol=1e-5)  # re-scored exactly


def test_plan_one_percent_filter_is_exact_restricted_scan(ann, data, settings) -> None:
    vecs, queries = data
    mask = np.random.default_rng(5).random(N) < 0.01
    plan = vplan.choose_plan(ann, mask, settings.plan_restricted_max_rows, settings.plan_min_selectivity)
    assert plan.method == "restricted" and plan.allowed == int(mask.sum())

    def by_plan(q, k, m):
        return vplan.search(ann, q, k, m, settings.plan_restricted_max_rows, settings.plan_min_selectivity)[0]

    assert _recall(ann, queries, mask, ExactIndex(vecs), by_plan) == 1.0


def test_plan_broad_filter_uses_ann_with_filter_inside(ann, data, settings) -> None:
    vecs, queries = data
    mask = np.random.default_rng(6).random(N) < 0.5
    assert vplan.choose_plan(ann, mask, settings.plan_restricted_max_rows, settings.plan_min_selectivity).method == "ann"
    assert vplan.choose_plan(ann, None, settings.plan_restricted_max_rows, settings.plan_min_selectivity).method == "ann"
    assert _recall(ann, queries, mask, ExactIndex(vecs)) >= 0.97


def test_plan_on_exact_index_and_empty_filter(data, settings) -> None:
    vecs, queries = data
    exact = ExactIndex(vecs[:1000])
    mask = np.zeros(1000, dtype=bool)
    found, plan = vplan.search(exact, queries[0], K, mask, 10, 0.05)
    assert plan.method == "exact" and found == {}
    mask[[3, 7]] = True
    found, _ = vplan.search(exact, queries[0], K, mask, 10, 0.05)
    assert set(found) == {3, 7}


def test_save_load_round_trip_memory_maps_vectors(ann, data, settings, tmp_path) -> None:
    vecs, queries = data
    np.save(tmp_path / VECTORS_FILE, vecs)
    ann.save(tmp_path)
    loaded = load_index(tmp_path, ann.kind, settings)
    assert isinstance(loaded.vectors, np.memmap)
    assert loaded.search(queries[0], K) == ann.search(queries[0], K)
