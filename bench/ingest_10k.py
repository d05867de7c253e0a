"""Ingest throughput: N escalation cases (CP932 CSV) into a fresh home, then 1 % changed.

    python -m bench.ingest_10k                 # 10,000 cases (~20+ minutes of embedding on 2 cores)
    python -m bench.ingest_10k --cases 2000    # smaller run
    python -m bench.ingest_10k --json

The cases are made by combining rows of ``data/samples/escalations/escalation_history.csv``
(symptom of one row + a sentence of another, resolution of a third …; a small built-in
list when the samples are absent), written as one Excel-style CP932 CSV and listed in a
sources file. Run 1 is ``reindex`` into an empty home; run 2 changes the resolution of
1 % of the rows and runs ``reindex`` again. For each run it prints cases/s, the time per
stage (parse, chunk, embed, write, snapshot; from :class:`index.update.IngestReport`),
chunks embedded and peak RSS. The model is loaded before timing starts (reported apart).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "samples" / "escalations" / "escalation_history.csv"
HEADERS = ["受付番号", "受付日時", "顧客名", "問い合わせ内容", "解決策", "原因", "ステータス"]
BUILTIN = [
    ("青葉商事", "複合機で紙詰まりが頻発する。", "給紙ローラーを交換した。", "ローラーの摩耗"),
    ("緑川工業", "スキャンした文書がメールで届かない。", "SMTPサーバーの設定を修正した。", "メールサーバーの移行"),
    ("東雲物産", "VPNに接続できない。", "ルーターのファームウェアを更新した。", "ファームウェアの不具合"),
    ("ひかり運輸", "勤怠クラウドにログインできない。", "アカウントロックを解除した。", "連続ログイン失敗"),
    ("若葉設計", "請求書の金額が契約と違う。", "単価マスタを修正し請求書を再発行した。", "単価の登録誤り"),
    ("コスモ保険", "印刷が薄くかすれる。", "トナーを交換し濃度設定を戻した。", "トナー残量不足"),
    ("さくら医院", "無線LANが頻繁に切れる。", "チャネルを固定に変更した。", "電波干渉"),
    ("はやて電機", "FAXが受信できない。", "回線種別の設定を修正した。", "回線工事後の設定漏れ"),
]


def _sample_rows() -> list[tuple[str, str, str, str]]:
    if not SAMPLE.exists():
        return BUILTIN
    from hikitsugi.ingest.encoding import decode_bytes

    rows = []
    for r in csv.DictReader(io.StringIO(decode_bytes(SAMPLE.read_bytes()).text, newline="")):
        body = (r.get("問い合わせ内容") or "").strip()
        if body:
            rows.append((r.get("顧客名") or "", body, (r.get("解決策") or "").strip(), (r.get("原因") or "").strip()))
    return rows or BUILTIN


def _first_sentence(text: str) -> str:
    return text.split("。")[0] + "。" if "。" in text else text


def make_cases(n: int, seed: int = 4) -> list[list[str]]:
    base = _sample_rows()
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        a, b, c = rng.choice(base), rng.choice(base), rng.choice(base)
        day = 1 + i % 28
        cases.append([f"BENCH-{i:06d}", f"2025/{1 + i % 12:02d}/{day:02d} {9 + i % 9:02d}:{i % 60:02d}", a[0],
                      f"{a[1]} {_first_sentence(b[1])}", f"{c[2]} {_first_sentence(a[2])}".strip(), b[3],
                      rng.choice(["完了", "完了", "完了", "対応中"])])
    return cases


def write_csv(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("cp932", errors="replace"))


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run(entries, settings, n_cases: int) -> dict:
    from hikitsugi.index.update import reindex

    t = time.perf_counter()
    r = reindex(entries, settings)
    wall = time.perf_counter() - t
    return {"seconds": round(wall, 1), "cases_per_s": round(n_cases / wall, 1),
            "stages_s": {k: round(v, 1) for k, v in r.timings.items()},
            "docs_added": r.docs_added, "docs_changed": r.docs_changed, "docs_unchanged_files": r.files_unchanged,
            "chunks_written": r.chunks_written, "chunks_embedded": r.chunks_embedded,
            "files_failed": r.files_failed, "peak_rss_mib": _peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--change", type=float, default=0.01, help="Fraction of rows changed for the second run.")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary home and data.")
    args = ap.parse_args()

    from hikitsugi.config import get_settings
    from hikitsugi.embedding.encoder import get_embedder, model_path
    from hikitsugi.ingest.sources import load_sources

    work = Path(tempfile.mkdtemp(prefix="hikitsugi-bench-ingest-"))
    try:
        data = work / "data"
        data.mkdir()
        cases = make_cases(args.cases)
        write_csv(data / "escalations.csv", cases)
        (data / "sources.yaml").write_text("sources:\n  - path: escalations.csv\n", encoding="utf-8")
        base = get_settings()
        settings = base.model_copy(update={"home": work / "home", "database_url": "", "model": model_path(base)})
        t = time.perf_counter()
        get_embedder(settings)
        model_s = round(time.perf_counter() - t, 1)
        entries = load_sources(data / "sources.yaml").entries
        out = {"cases": args.cases, "csv_mib": round((data / "escalations.csv").stat().st_size / 2**20, 2),
               "model_load_s": model_s, "rss_after_model_load_mib": _peak_rss_mib()}
        out["first"] = _run(entries, settings, args.cases)

        rng = random.Random(11)
        changed = rng.sample(range(len(cases)), max(1, int(len(cases) * args.change)))
        for i in changed:
            cases[i][4] = f"{cases[i][4]} 再発防止のため手順書を更新した（{i}）。"
        write_csv(data / "escalations.csv", cases)
        out["changed_rows"] = len(changed)
        out["second"] = _run(entries, settings, args.cases)
        if args.json:
            print(json.dumps(out, ensure_ascii=False, indent=2))
            return
        print(f"{args.cases} cases ({out['csv_mib']} MiB CP932 CSV); model load {model_s}s, "
              f"RSS after model load {out['rss_after_model_load_mib']} MiB")
        for label, key in (("first ingest", "first"), (f"reindex after {len(changed)} changed rows", "second")):
            r = out[key]
            stages = ", ".join(f"{k} {v}s" for k, v in r["stages_s"].items())
            print(f"{label}: {r['seconds']}s, {r['cases_per_s']} cases/s; {stages}; documents +{r['docs_added']} "
                  f"~{r['docs_changed']}; chunks written {r['chunks_written']}, embedded {r['chunks_embedded']}; "
                  f"peak RSS {r['peak_rss_mib']} MiB")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
