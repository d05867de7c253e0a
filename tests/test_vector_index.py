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
    assert not loaded.vectors.flags.owndata and isinstance(loaded.vectors.base, np.memmap)  # mapped, not read
    assert loaded.search(queries[0], K) == ann.search(queries[0], K)


# ------------------------------------------------------------------ through the product's search

@pytest.fixture(scope="module")
def ann_home(sample_home, model_dir, tmp_path_factory):
    """A copy of the ingested samples whose generation is rebuilt (stored vectors, no
    re-embedding) with the approximate index, and plan thresholds that make a one-customer
    filter restricted and a kind filter go through the ANN."""
    import shutil

    from hikitsugi.index.update import rebuild_index

    home = tmp_path_factory.mktemp("ann-home") / "home"
    shutil.copytree(sample_home, home, ignore=shutil.ignore_patterns("*.lock", "server.log"))
    s = Settings(home=home, model=str(model_dir), vector_index="ivf-sq8", ivf_nprobe=64,
                 plan_restricted_max_rows=100, plan_min_selectivity=0.05)
    rebuild_index(s)
    return s


def test_ann_generation_keeps_filters_sentences_and_results(ann_home, use_home) -> None:
    from hikitsugi.index.filters import Filters, build_mask, code_value
    from hikitsugi.search.retrieve import get_snapshot, retrieve_candidates
    from hikitsugi.search.service import search

    snap, exact_snap = get_snapshot(ann_home.index_dir), get_snapshot(use_home.index_dir)
    assert snap.dense.kind == "ivf-sq8" and exact_snap.dense.kind == "exact"
    assert snap.sent_vecs is not None and len(snap.sent_vecs) > 0
    queries = ["紙詰まりが何度も起きる", "スキャンしたのにメールが届かない", "トナーの交換方法を知りたい",
               "請求書の再発行", "ログインできない"]
    for q in queries:  # same candidates and best-sentence scores as the exact index
        a, _, _ = retrieve_candidates(q, ann_home, snap, "hybrid", 20, None)
        b, _, _ = retrieve_candidates(q, use_home, exact_snap, "hybrid", 20, None)
        top_a = sorted(a.dense, key=a.dense.get, reverse=True)[:10]
        top_b = sorted(b.dense, key=b.dense.get, reverse=True)[:10]
        assert len(set(top_a) & set(top_b)) >= 9
        shared = set(a.dense) & set(b.dense)
        assert all(abs(a.dense[r] - b.dense[r]) < 1e-5 for r in shared)  # exact cosines, sentences included
        assert [r.source_id for r in search(q, ann_home, k=5).results][:3] == \
            [r.source_id for r in search(q, use_home, k=5).results][:3]
    customer = next(c for c in snap.manifest["vocab"]["customer"] if c)
    f = Filters(customers=[customer])
    mask = build_mask(f, snap.codes, snap.manifest["vocab"], snap.dates)
    assert 0 < mask.sum() <= 100
    for q in queries:  # restricted exact scan: only that customer's rows, as with the exact index
        res = search(q, ann_home, k=5, filters=f)
        ref = search(q, use_home, k=5, filters=f)
        assert [r.source_id for r in res.results] == [r.source_id for r in ref.results]
        assert all(code_value(r.customer) == customer for r in res.results)
    manuals = Filters(kinds=["manual"])  # broad: the ANN with the filter inside it
    for q in queries:
        assert all(r.kind == "manual" for r in search(q, ann_home, k=5, filters=manuals).results)


def test_ann_generation_applies_per_customer_access_inside_search(ann_home) -> None:
    from hikitsugi.access.policy import Principal
    from hikitsugi.search.service import search

    agent = Principal(user="tanaka", role="agent")  # assigned to no customer: sees no notes at all
    for q in ["先方から電話があった件", "いつもの件", "担当者への連絡メモ"]:
        res = search(q, ann_home, k=10, viewer=agent)
        assert res.results and all(r.kind != "note" for r in res.results)
