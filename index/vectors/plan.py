"""The query plan for the dense side: exact restricted scan or approximate index.

An approximate index answers an unfiltered query in well under a millisecond, but a
selective filter (one customer, one product, a viewer who may see 1 % of the rows) breaks
it: an HNSW walk with a 1 % filter found only 27–39 % of the true top 10 at 1M rows (issue
14), and an IVF scan of a few lists holds few allowed rows. The exact scan of only the
allowed rows costs in proportion to their number (numpy gather + one matrix-vector
product) and is exact. So, measured with ``python -m bench.vectors --chunks 1000000``
(docs/benchmarks.md):

* index smaller than ``ann_min_rows`` (the exact backend): ``exact``, filter inside the scan;
* no filter: ``ann``;
* at most ``plan_restricted_max_rows`` allowed rows, or fewer than
  ``plan_min_selectivity`` of all rows: ``restricted`` (exact over the allowed rows);
* otherwise ``ann`` with the filter applied inside the approximate search.

Measured (``bench.vectors``, docs/benchmarks.md; one thread, a busy machine): the
restricted scan costs ~0.1 ms for 1,000 allowed rows and ~1 ms for 5,000 at 100k, but
64–107 ms for 10,000 rows scattered over a 1,000,000-row matrix (the gather touches a page
per row), while IVF-SQ8 with the filter inside stayed under 1 ms at recall@10 0.987 with a
1 % filter at 1M (10,000 allowed rows) and 0.997 at 5 %. What breaks the ANN is few allowed
rows, not a small share: 1,000 allowed rows gave 0.965 at 100k (1 %) and 0.657 at 1M
(0.1 %). Hence the defaults: at most 5,000 allowed rows, or under 0.5 % of the index →
restricted; otherwise the ANN with the filter inside. Both are settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hikitsugi.index.vectors.base import VectorIndex


@dataclass(frozen=True)
class Plan:
    method: str  # "exact" | "restricted" | "ann"
    allowed: int  # rows the filter allows (all rows when unfiltered)


def choose_plan(index: VectorIndex, mask: np.ndarray | None, restricted_max_rows: int,
                min_selectivity: float) -> Plan:
    """Pick how to search ``index`` for a query whose allowed rows are ``mask`` (None = all)."""
    n = index.ntotal
    allowed = n if mask is None else int(np.count_nonzero(mask))
    if index.kind == "exact":
        return Plan("exact", allowed)
    if mask is None:
        return Plan("ann", allowed)
    if allowed <= restricted_max_rows or allowed < min_selectivity * n:
        return Plan("restricted", allowed)
    return Plan("ann", allowed)


def search(index: VectorIndex, q: np.ndarray, n: int, mask: np.ndarray | None, restricted_max_rows: int,
           min_selectivity: float) -> tuple[dict[int, float], Plan]:
    """The best ``n`` allowed rows {row: cosine} by the chosen plan, and the plan."""
    plan = choose_plan(index, mask, restricted_max_rows, min_selectivity)
    if plan.allowed == 0:
        return {}, plan
    if plan.method == "restricted":
        return index.restricted(q, n, mask), plan
    return index.search(q, n, mask), plan
