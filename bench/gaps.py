"""The cost of the content-gap report when the search log is flooded with distinct queries.

A key can fill the search log with thousands of distinct queries that have no confident
hit; the report embeds and clusters the distinct ones. This writes ``--queries`` distinct
no-hit queries (plus a few asked by several users) into a throw-away home and times
``content_gaps`` cold (empty query-vector cache, as after a restart) with the shipped
cap (``gap_max_queries``) and with the cap at the number of queries (how it behaved
before the cap: every distinct query up to 2,000), interleaved ``--repeat`` times.

    python -m bench.gaps --queries 2000 [--repeat 2] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from hikitsugi.config import get_settings
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.insights import reports
    from hikitsugi.insights.searchlog import record_search
    from hikitsugi.storage.database import session_for

    class Who:
        def __init__(self, user: str) -> None:
            self.user, self.role, self.key_id = user, "agent", None

    base = get_settings()
    with throwaway_home(base, "hikitsugi-bench-gaps-") as settings:
        settings.ensure_dirs()
        at = dt.datetime.now(dt.timezone.utc)
        topics = ["社員食堂のメニュー", "駐車場の予約方法", "観葉植物の水やり", "会議室のプロジェクター", "名刺の発注"]
        n = 0
        for i in range(args.queries):
            q = f"{topics[i % len(topics)]}について {i}番目の質問"
            record_search(settings, f"f{n:08d}", Who("flood"), {"query": q},
                          {"normalized_query": q, "mode": "hybrid", "results": []}, at, scope="", lexicon=None)
            n += 1
        for t in topics:  # what many agents asked
            for u in range(4):
                record_search(settings, f"f{n:08d}", Who(f"agent{u}"), {"query": t},
                              {"normalized_query": t, "mode": "hybrid", "results": []}, at, scope="", lexicon=None)
                n += 1
        variants = {"capped": settings, "uncapped": settings.model_copy(update={"gap_max_queries": args.queries})}
        times: dict[str, list[float]] = {k: [] for k in variants}
        out: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, s in variants.items():
                reports._vec_cache.clear()  # cold, as after a restart
                session = session_for(s.db_url)
                try:
                    t = time.perf_counter()
                    gaps = reports.content_gaps(session, s, 30, scope=reports.TRUSTED)
                    times[name].append(time.perf_counter() - t)
                finally:
                    session.close()
                out[name] = {"clustered_queries": gaps["clustered_queries"], "distinct_queries": gaps["distinct_queries"],
                             "top_cluster_users": gaps["clusters"][0]["users"] if gaps["clusters"] else 0}
        for name in variants:
            out[name]["seconds_median"] = round(statistics.median(times[name]), 2)
        if args.json:
            print(json.dumps(out, ensure_ascii=False))
        else:
            for name, r in out.items():
                print(f"{name:9s} {r['clustered_queries']:5d} of {r['distinct_queries']} distinct queries clustered: "
                      f"{r['seconds_median']:.2f} s (median of {args.repeat}, cold); biggest cluster asked by "
                      f"{r['top_cluster_users']} users")
            print(f"ratio uncapped / capped: {out['uncapped']['seconds_median'] / max(out['capped']['seconds_median'], 1e-9):.1f}x",
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
