#!/usr/bin/env python3
"""Build the jusetsu-ja desk (あさひ住設サービス, fictional) and its labeled queries.

Inputs, written in this order (see the git history): problems.yaml and note_topics.yaml
(problem descriptions), queries.yaml (written from those descriptions only), then
cases.txt, notes.txt and ../desk/manuals/* (written from the same descriptions, after
the queries). This script only assembles them: it dates the cases (fixed seed), writes
the history as an Excel-style CP932 CSV with this desk's own headers, the notes as JSONL,
and the labels — **by resolution group**: a query about a problem is relevant to every
case whose 解決分類 is that problem's group (2), to the notes about the customer fact it
asks for (2) and to the manuals that hold the procedure (1). No label is given for
shared wording.

    python eval/datasets/jusetsu-ja/_build/build.py
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # eval/datasets/jusetsu-ja
DESK = ROOT / "desk"
rng = random.Random(20261130)

FAMILY = {  # problem -> (機種 candidates, 区分)
    "gas": (["GT-2460AWX", "GT-2050SAW", "GT-C2462"], "ガス給湯器"),
    "eco": (["EH-370F", "EH-460F"], "エコキュート"),
    "dryer": (["BD-10N"], "浴室暖房乾燥機"),
    "dish": (["DW-45A"], "食器洗い乾燥機"),
    "floor": (["GTH-2445"], "給湯暖房機"),
}
PROBLEM_FAMILY = {"ecocute_out": "eco", "ecocute_noise": "eco", "relief_water": "eco", "heatpump_error": "eco",
                  "dryer_weak": "dryer", "dish_residue": "dish", "dish_drain": "dish", "floor_heat": "floor"}
# who takes over when first line escalates; None = first line resolves it alone (still escalated sometimes)
ESCALATE = {"overheat": "サービスセンター（出張修理）", "ecocute_noise": "サービスセンター（出張修理）",
            "floor_heat": "サービスセンター（出張修理）", "leak": "サービスセンター（出張修理）",
            "heatpump_error": "サービスセンター（出張修理）", "gas_smell": "緊急出動（保安）",
            "replace_quote": "リフォーム窓口（営業）"}
MANUALS = {  # problem -> manuals holding its procedure (relevance 1)
    "gas_kyutoki_guide.md": ["freeze", "gas_meter", "ignition", "overheat", "remote_blank", "temp_unstable", "reheat",
                             "bath_level", "leak", "water_cloudy", "clock", "app_wifi", "gas_smell"],
    "ecocute_faq.html": ["ecocute_out", "ecocute_noise", "relief_water", "heatpump_error", "clock"],
    "bath_kitchen_guide.txt": ["dryer_weak", "dish_residue", "dish_drain"],
    "shuri_uketsuke_kitei.md": ["warranty", "reschedule", "manual_pdf", "replace_quote"],
}
CUSTOMERS = ["大西 恵", "小池 隆", "西田 美穂", "松田 浩一", "藤井 さやか", "森本 健", "石川 由美", "今井 直人",
             "長谷川 純", "村上 里奈", "坂本 学", "遠藤 千夏", "青木 翼", "福田 洋子", "三浦 大地", "岡田 真由美",
             "株式会社ミナミ不動産", "ひかり荘", "さくら台ハイツ管理組合", "北浜クリニック", "グリーンホテル湖畔",
             "山本 和子", "田中 誠", "星野学園 学生寮", "岡 正人"]
FIRST_LINE = ["佐々木", "中川", "高田", "小野"]
SECOND = {"サービスセンター（出張修理）": ["技術 安藤", "技術 木下", "技術 原"], "緊急出動（保安）": ["保安 堀"],
          "リフォーム窓口（営業）": ["営業 松井"], "技術サポート": ["技術 安藤", "技術 原"]}
HEADER = ["管理番号", "受付日時", "お客様名", "機種", "区分", "件名", "症状", "一次対応", "エスカレ先", "処置", "原因",
          "解決分類", "担当者", "状態"]
NOTE_KEYS = ["記録番号", "対応日時", "お客様名", "作成者", "経路", "メモ"]


def rows(path: Path, n: int) -> list[list[str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            parts = [p.strip() for p in line.split("|")]
            assert len(parts) == n, (path.name, line)
            out.append(parts)
    return out


def main() -> None:
    problems = {p["id"]: p for p in yaml.safe_load((HERE / "problems.yaml").read_text(encoding="utf-8"))}
    topics = {t["id"]: t for t in yaml.safe_load((HERE / "note_topics.yaml").read_text(encoding="utf-8"))}
    queries = yaml.safe_load((HERE / "queries.yaml").read_text(encoding="utf-8"))

    # ---- cases: dated at random (fixed seed) from 2024-01 to 2026-10, numbered in time order
    cases = []
    start = dt.datetime(2024, 1, 9, 9, 0)
    for pid, subj, text, sol, cause in rows(HERE / "cases.txt", 5):
        p = problems[pid]
        day = start + dt.timedelta(days=rng.randrange(0, 1020), minutes=rng.randrange(0, 9 * 60))
        if pid == "freeze":  # freezing happens in winter
            day = dt.datetime(rng.choice([2024, 2025, 2026]), rng.choice([1, 2, 12]) if True else 1,
                              rng.randrange(1, 28), 8, rng.randrange(0, 60))
            if day > dt.datetime(2026, 10, 30):
                day = day.replace(year=2025)
        fam = PROBLEM_FAMILY.get(pid, "gas")
        models, area = FAMILY[fam]
        esc = ESCALATE.get(pid)
        if esc is None and rng.random() < 0.45:
            esc = "技術サポート"  # first line was not sure and passed it on
        first = rng.choice(["症状を聞き取り", "症状と型番を確認", "お客様に状況を確認"])
        first += "、手順を案内" if not esc else f"、{esc}へ引き継ぎ"
        cases.append({"when": day, "cust": rng.choice(CUSTOMERS), "model": rng.choice(models), "area": area,
                      "subj": subj, "text": text, "first": first, "esc": esc or "なし", "sol": sol, "cause": cause,
                      "group": p["group"], "pid": pid,
                      "who": rng.choice(SECOND[esc]) if esc else rng.choice(FIRST_LINE)})
    cases.sort(key=lambda c: (c["when"], c["subj"]))
    seq: dict[int, int] = {}
    for c in cases:
        y = c["when"].year % 100
        seq[y] = seq.get(y, 0) + 1
        c["id"] = f"R{y:02d}-{seq[y]:04d}"
        c["status"] = "対応済" if c["when"] < dt.datetime(2026, 10, 1) else rng.choice(["対応済", "対応中"])
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    for c in cases:
        w.writerow([c["id"], c["when"].strftime("%Y/%m/%d %H:%M"), c["cust"], c["model"], c["area"], c["subj"],
                    c["text"], c["first"], c["esc"], c["sol"], c["cause"], c["group"], c["who"], c["status"]])
    (DESK / "history").mkdir(parents=True, exist_ok=True)
    (DESK / "history" / "shuri_rireki.csv").write_bytes(buf.getvalue().encode("cp932"))

    # ---- notes
    notes = []
    for i, (topic, when, cust, who, channel, text) in enumerate(rows(HERE / "notes.txt", 6), 1):
        notes.append({"id": f"M-{i:03d}", "topic": topic, "when": when, "cust": cust, "who": who, "channel": channel,
                      "text": text})
    (DESK / "notes").mkdir(parents=True, exist_ok=True)
    with (DESK / "notes" / "taiou_memo.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for n in notes:
            fh.write(json.dumps(dict(zip(NOTE_KEYS, [n["id"], n["when"].replace(" ", "T") + ":00+09:00", n["cust"],
                                                     n["who"], n["channel"], n["text"]])), ensure_ascii=False) + "\n")

    # ---- labels by resolution group
    out_q, out_r = [], []
    for i, q in enumerate(queries, 1):
        qid = f"j{i:03d}"
        rel: dict[str, int] = {}
        for pid in q.get("p") or []:
            if pid in problems:
                group = problems[pid]["group"]
                rel.update({c["id"]: 2 for c in cases if c["group"] == group})
                for manual, pids in MANUALS.items():
                    if pid in pids:
                        rel.setdefault(f"manuals/{manual}", 1)
            elif pid in topics:
                rel.update({n["id"]: 2 for n in notes if n["topic"] == pid})
            else:
                raise SystemExit(f"{qid}: unknown problem or topic {pid!r}")
        if q["type"] != "no_answer" and not rel:
            raise SystemExit(f"{qid}: no relevant item")
        out_q.append({"_id": qid, "text": q["t"], "type": q["type"]})
        out_r += [(qid, d, g) for d, g in rel.items()]
    with (ROOT / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for q in out_q:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")
    (ROOT / "qrels").mkdir(exist_ok=True)
    with (ROOT / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, d, g in out_r:
            fh.write(f"{qid}\t{d}\t{g}\n")
    print(f"cases {len(cases)}, escalated {sum(c['esc'] != 'なし' for c in cases)}, notes {len(notes)}, "
          f"queries {len(out_q)} (no answer {sum(q['type'] == 'no_answer' for q in out_q)}), qrels {len(out_r)}")


if __name__ == "__main__":
    main()
