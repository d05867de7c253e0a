#!/usr/bin/env python3
"""Build the bundled Japanese sample data of Hikitsugi (fictional company 株式会社ミドリ事務機).

Deterministic: one random.Random with a fixed seed, fixed timestamps inside DOCX/PDF/EML,
no network.  Writes

  data/samples/manuals/*                      manuals (md, html, docx, pdf, txt)
  data/samples/escalations/escalation_history.csv   CP932, CRLF
  data/samples/notes/interaction_notes.jsonl  UTF-8
  data/samples/notes/mail/*.eml               ISO-2022-JP and UTF-8 mails
  data/samples/customers/customers.yaml       UTF-8
  data/samples/README.md
  eval/datasets/support-ja/{queries.jsonl,qrels/test.tsv,dataset.yaml}

Run:  python data/samples/_build/build_samples.py
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import io
import json
import random
import re
import sys
import unicodedata
import zipfile
from pathlib import Path

import yaml

sys.dont_write_bytecode = True  # keep _build free of __pycache__
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from content_cases import PROBLEMS, FS, MXT, NWT, KTT, ACC, SALES, QA, LEGAL, CSM  # noqa: E402
from content_customers import CUSTOMERS, EXTRA_CUSTOMERS, NOTES, MAILS  # noqa: E402
import content_manuals as CM  # noqa: E402
from content_queries import QUERIES  # noqa: E402

SEED = 20261125
SAMPLES = HERE.parent                       # data/samples
REPO = SAMPLES.parents[1]                   # project root
EVAL = REPO / "eval" / "datasets" / "support-ja"
TODAY = dt.date(2026, 11, 25)               # reference date of the data set
START, END = dt.date(2024, 1, 4), dt.date(2026, 10, 30)

rng = random.Random(SEED)

CSV_HEADER = ["受付番号", "受付日時", "顧客名", "製品", "カテゴリ", "件名", "問い合わせ内容", "一次対応",
              "エスカレーション先", "解決策", "原因", "原因分類", "対応者", "ステータス"]
NOTE_KEYS = ["記録ID", "日時", "顧客名", "記入者", "チャネル", "内容"]

# ----------------------------------------------------------------------------- staff
# (name, first day, last day) — people come and go, like in a real desk
FIRST_LINE = [("佐藤 美咲", None, None), ("鈴木 健太", None, None), ("田中 彩", None, None),
              ("中村 大輝", None, dt.date(2025, 6, 30)), ("伊藤 翔", dt.date(2024, 10, 1), None),
              ("小川 結衣", dt.date(2025, 7, 1), None)]
TEAM = {FS: ["渡辺 剛", "加藤 勇気"], MXT: ["髙橋 誠", "小林 直樹"], NWT: ["吉田 亮", "松本 智子"],
        KTT: ["井上 葵", "木村 拓也"], ACC: ["林 恵子"], QA: ["斎藤 隆"], LEGAL: ["池田 真理"], CSM: ["山口 和彦"]}
SALES_STAFF = [("清水 浩二", None, dt.date(2025, 9, 30)), ("石田 健", None, None), ("森 沙織", None, None),
               ("大野 里美", None, None)]


def active(pool, day):
    return [n for n, a, b in pool if (a is None or day >= a) and (b is None or day <= b)]


CUST = {c["id"]: c for c in CUSTOMERS}
CUST_BY_NAME = {c["name"]: c for c in CUSTOMERS}


def owner_at(cust, day):
    name = cust["owner"].split("（")[0]
    if cust["id"] in ("C001", "C017") and day < dt.date(2025, 10, 1):
        return "清水 浩二"
    return name


# ----------------------------------------------------------------------------- helpers
def nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s).lower()


def bigrams(s: str) -> set[str]:
    s = re.sub(r"\s+", "", nfkc(s))
    return {s[i:i + 2] for i in range(len(s) - 1)} or {s}


def jaccard(a: str, b: str) -> float:
    x, y = bigrams(a), bigrams(b)
    return len(x & y) / len(x | y) if x | y else 0.0


def first_sentence(s: str) -> str:
    return s.split("。")[0]


def business_day(d: dt.date) -> dt.date:
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def random_datetime() -> dt.datetime:
    span = (END - START).days
    d = business_day(START + dt.timedelta(days=rng.randrange(span + 1)))
    if d > END:
        d = END
    minute = rng.randrange(8 * 60 + 45, 18 * 60 + 30)
    return dt.datetime.combine(d, dt.time(minute // 60, minute % 60))


# ----------------------------------------------------------------------------- cases
def pick_customer(fam: str, day: dt.date):
    pool, weights = [], []
    for c in CUSTOMERS:
        if fam == "any" or fam in c["fams"]:
            pool.append(("reg", c["id"]))
            weights.append({"A": 3.0, "B": 2.0, "C": 1.2}[c["rank"]])
    for name, fams in EXTRA_CUSTOMERS:
        if fam == "any" or fam in fams:
            pool.append(("extra", name))
            weights.append(1.3)
    kind, val = rng.choices(pool, weights=weights)[0]
    return (CUST[val]["name"], val) if kind == "reg" else (val, None)


def build_cases():
    specs = []
    for p in PROBLEMS:
        for entry in p["texts"]:
            specs.append((p, entry))
    rows = []
    for p, e in specs:
        when = dt.datetime.strptime(e["d"], "%Y-%m-%d %H:%M") if e["d"] else random_datetime()
        day = when.date()
        if e["c"]:
            cname, cid = CUST[e["c"]]["name"], e["c"]
        else:
            cname, cid = pick_customer(p["fam"], day)
        prods = p["prods"]
        if e["prod"]:
            prod = e["prod"]
        else:
            if cid:
                fit = [x for x in prods if any(x.split("（")[0] in cp for cp in CUST[cid]["products"])]
                prods = fit or prods
            prod = rng.choice(prods)
        esc_team, prob = p["esc"] if p["esc"] else (None, 0.0)
        escalated = esc_team is not None and rng.random() < prob
        first = rng.choice(p["first"])
        if escalated:
            lag = rng.randint(5, 15) if p["key"] in ("noise_smell", "sns", "legal") else rng.randint(10, 55)
            t = (when + dt.timedelta(minutes=lag)).strftime("%H:%M")
            first = f"{first}\n→ {esc_team}へエスカレーション（{t}）"
            if esc_team == SALES:
                resolver = owner_at(CUST[cid], day) if cid else rng.choice(active(SALES_STAFF, day))
            else:
                resolver = rng.choice(TEAM[esc_team])
        else:
            resolver = rng.choice(active(FIRST_LINE, day))
        rows.append({
            "when": when, "cust": cname, "cid": cid, "prod": prod, "cat": p["cat"],
            "subj": e["subj"] or rng.choice(p["subjects"]), "text": e["t"], "first": first,
            "esc": esc_team if escalated else "なし", "sol": e["sol"] or rng.choice(p["sol"]),
            "cause": e["cause"] or rng.choice(p["cause"]), "label": p["label"], "resolver": resolver,
            "type": p["key"], "pinned": bool(e["c"] or e["d"]),
        })
    rows.sort(key=lambda r: (r["when"], r["text"]))
    counters = collections.Counter()
    for r in rows:
        yy = r["when"].year % 100
        counters[yy] += 1
        r["id"] = f"INC-{yy:02d}-{counters[yy]:04d}"
        status = "完了"
        if r["when"].date() >= dt.date(2026, 10, 1):
            x = rng.random()
            status = "対応中" if x < 0.4 else ("保留" if x < 0.55 else "完了")
        r["status"] = status
        if status == "対応中":
            r["sol"] = "【対応中・予定】" + r["sol"]
        elif status == "保留":
            r["sol"] = "【保留：お客様の回答待ち】" + r["sol"]
    return rows


def write_cases_csv(rows):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(CSV_HEADER)
    for r in rows:
        w.writerow([r["id"], r["when"].strftime("%Y/%m/%d %H:%M"), r["cust"], r["prod"], r["cat"], r["subj"],
                    r["text"], r["first"], r["esc"], r["sol"], r["cause"], r["label"], r["resolver"], r["status"]])
    text = buf.getvalue()
    try:
        data = text.encode("cp932")
    except UnicodeEncodeError as exc:
        bad = text[max(0, exc.start - 20):exc.end + 20]
        raise SystemExit(f"escalation_history.csv: character not encodable in CP932: {bad!r}")
    out = SAMPLES / "escalations" / "escalation_history.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


# ----------------------------------------------------------------------------- notes
def gen_followups(rows, n=50):
    cand = [r for r in rows if r["cid"] and not r["pinned"] and r["status"] == "完了"
            and r["type"] not in ("sns", "damages", "legal", "staff_complaint")]
    chosen = sorted(rng.sample(cand, min(n, len(cand))), key=lambda r: r["when"])
    notes = []
    for r in chosen:
        c = CUST[r["cid"]]
        contact = c["contact"] + ("様" if not c["contact"].endswith("方") else "")
        day = business_day(r["when"].date() + dt.timedelta(days=rng.randint(1, 7)))
        if day > dt.date(2026, 11, 20):
            continue
        minute = rng.randrange(9 * 60, 18 * 60)
        when = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
        pref = ""
        if c["preferences"] and rng.random() < 0.5:
            pref = "連絡メモ：" + c["preferences"][0]
        sol1 = first_sentence(r["sol"])
        fam_mx = r["prod"].startswith("MX")
        tech = r["cat"] in ("複合機", "ネットワーク", "勤怠クラウド")
        choices = (["A", "B", "C", "E", "F"] + (["D", "D"] if fam_mx else [])) if tech else ["B", "E", "F"]
        if any(k in p for p in c["preferences"] for k in ("電話不可", "メールのみ", "メールで", "電話は嫌")):
            choices = ["B", "F"]           # this customer is only contacted by e-mail
        t = rng.choice(choices)
        if t == "A":
            ch, text = "電話", f"{r['id']}（{r['subj']}）のその後を{contact}に確認。対応後は再発していないとのこと。{pref}"
        elif t == "B":
            ch, text = "メール", (f"{r['id']}（{r['subj']}）の件で{contact}からお礼のメール。"
                                 f"「{r['label']}」として対応済み。" + ("次回の定期保守でも状態を確認する。" if r["cat"] != "勤怠クラウド" and tech else "")
                                 + pref)
        elif t == "C":
            again = r["esc"] if r["esc"] != "なし" else "二次サポート"
            ch, text = "電話", (f"「{r['subj']}」の件で{contact}から再度連絡。{r['id']}と同じ症状が出たとのこと。"
                               f"前回は「{r['label']}」として対応済みのため、同じ手順を案内して解消した。"
                               f"続くようなら{again}に相談する。")
        elif t == "D":
            cnt = rng.randrange(40, 600) * 1000 + rng.randrange(1000)
            ch, text = "訪問", (f"定期保守で訪問。{r['id']}で対応した{r['prod']}を点検し、異常なし。"
                               f"カウンターは{cnt:,}枚。{pref}")
        elif t == "E":
            ch, text = "電話", f"{contact}から「{r['subj']}」の件で追加の質問あり。前回の対応内容（{sol1}）を改めて説明した。{pref}"
        else:
            ch, text = "メール", f"{r['id']}の対応報告を{contact}へメールで送付。原因は{r['cause']}対応として{sol1}。"
        author = r["resolver"] if (t in ("D", "F") and r["esc"] != "なし") else rng.choice(active(FIRST_LINE, day))
        if t == "D":
            author = rng.choice(TEAM[FS])
        notes.append({"key": f"auto_{r['id']}", "when": when, "cid": r["cid"], "author": author,
                      "channel": ch, "text": text.strip(), "case": r["id"]})
    return notes


def build_notes(rows):
    notes = []
    for n in NOTES:
        notes.append({"key": n["key"], "when": dt.datetime.strptime(n["when"], "%Y-%m-%d %H:%M"), "cid": n["cust"],
                      "author": n["author"], "channel": n["channel"], "text": n["text"], "case": None})
    notes += gen_followups(rows)
    notes.sort(key=lambda n: (n["when"], n["key"]))
    for i, n in enumerate(notes, start=1):
        n["id"] = f"NOTE-{i:04d}"
    out = SAMPLES / "notes" / "interaction_notes.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        for n in notes:
            obj = {"記録ID": n["id"], "日時": n["when"].strftime("%Y-%m-%dT%H:%M:00+09:00"),
                   "顧客名": CUST[n["cid"]]["name"], "記入者": n["author"], "チャネル": n["channel"], "内容": n["text"]}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return notes


def build_mails():
    from email.header import Header
    from email.message import EmailMessage
    from email.mime.text import MIMEText
    from email.utils import format_datetime, formataddr

    outdir = SAMPLES / "notes" / "mail"
    outdir.mkdir(parents=True, exist_ok=True)
    jst = dt.timezone(dt.timedelta(hours=9))
    paths = {}
    for i, m in enumerate(MAILS, start=1):
        when = dt.datetime.strptime(m["date"], "%Y-%m-%d %H:%M").replace(tzinfo=jst)
        msgid = f"<{when:%Y%m%d%H%M}.{i:03d}@{m['frm'][1].split('@')[1]}>"
        if m["charset"] == "iso-2022-jp":
            msg = MIMEText(m["body"], "plain", "iso-2022-jp")
            msg["Subject"] = Header(m["subject"], "iso-2022-jp")
            msg["From"] = formataddr(m["frm"], charset="iso-2022-jp")
            msg["To"] = formataddr(m["to"], charset="iso-2022-jp")
            msg["Date"] = format_datetime(when)
            msg["Message-ID"] = msgid
            data = msg.as_bytes()
        else:
            msg = EmailMessage()
            msg["Subject"] = m["subject"]
            msg["From"] = formataddr(m["frm"])
            msg["To"] = formataddr(m["to"])
            msg["Date"] = format_datetime(when)
            msg["Message-ID"] = msgid
            msg.set_content(m["body"], charset="utf-8", cte="8bit")
            data = msg.as_bytes()
        p = outdir / m["file"]
        p.write_bytes(data)
        paths[m["key"]] = f"notes/mail/{m['file']}"
    return paths


# ----------------------------------------------------------------------------- customers
def build_customers():
    out = []
    for c in CUSTOMERS:
        out.append({k: c[k] for k in ("id", "name", "aliases", "rank", "owner", "products", "commitments",
                                      "arrangements", "preferences", "emergency_contacts", "notes")})
    text = yaml.safe_dump(out, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000)
    head = ("# 顧客別カルテ（株式会社ミドリ事務機）— すべて架空のデータです / all records are fictional.\n"
            "# commitments.valid_until: null = 期限なし。emergency_contacts は個人情報として扱う。\n")
    p = SAMPLES / "customers" / "customers.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(head + text, encoding="utf-8")
    return out


# ----------------------------------------------------------------------------- manuals
FIXED_ZIP_TIME = (2026, 4, 1, 9, 0, 0)


def _normalize_zip(data: bytes) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            zout.writestr(zi, zin.read(info.filename))
    return buf.getvalue()


def build_docx(path: Path):
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    for sname in ("Normal", "Heading 1", "Heading 2", "Heading 3", "List Number", "List Bullet"):
        st = doc.styles[sname]
        rpr = st.element.get_or_add_rPr()
        rfonts = rpr.find(qn("w:rFonts"))
        if rfonts is None:
            rfonts = rpr.makeelement(qn("w:rFonts"), {})
            rpr.append(rfonts)
        rfonts.set(qn("w:eastAsia"), "Yu Gothic")
    doc.styles["Normal"].font.size = Pt(10.5)
    cp = doc.core_properties
    cp.title = "ミドリ勤怠クラウド よくある質問"
    cp.author = "株式会社ミドリ事務機 勤怠クラウド運用チーム"
    cp.last_modified_by = "井上 葵"
    cp.created = dt.datetime(2026, 7, 1, 9, 0, 0)
    cp.modified = dt.datetime(2026, 7, 1, 9, 0, 0)
    cp.revision = 7
    for kind, payload in CM.KINTAI_DOCX:
        if kind in ("h1", "h2", "h3"):
            doc.add_heading(payload, level=int(kind[1]))
        elif kind == "p":
            doc.add_paragraph(payload)
        elif kind == "ol":
            for item in payload:
                doc.add_paragraph(item, style="List Number")
        elif kind == "ul":
            for item in payload:
                doc.add_paragraph(item, style="List Bullet")
        elif kind == "table":
            t = doc.add_table(rows=len(payload), cols=len(payload[0]))
            t.style = "Table Grid"
            for i, row in enumerate(payload):
                for j, cell in enumerate(row):
                    t.cell(i, j).text = cell
                    if i == 0:
                        for run in t.cell(i, j).paragraphs[0].runs:
                            run.bold = True
    buf = io.BytesIO()
    doc.save(buf)
    path.write_bytes(_normalize_zip(buf.getvalue()))


def build_pdf(path: Path):
    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    rl_config.invariant = 1
    font = "HeiseiKakuGo-W5"
    pdfmetrics.registerFont(UnicodeCIDFont(font))
    base = dict(fontName=font, wordWrap="CJK")
    st = {
        "h1": ParagraphStyle("h1", fontSize=17, leading=24, spaceAfter=8, **base),
        "h2": ParagraphStyle("h2", fontSize=13, leading=19, spaceBefore=10, spaceAfter=4, **base),
        "h3": ParagraphStyle("h3", fontSize=11.5, leading=17, spaceBefore=6, spaceAfter=2, **base),
        "p": ParagraphStyle("p", fontSize=9.5, leading=15, spaceAfter=4, **base),
        "li": ParagraphStyle("li", fontSize=9.5, leading=15, leftIndent=12, firstLineIndent=-10, spaceAfter=2, **base),
        "cell": ParagraphStyle("cell", fontSize=8.5, leading=12, **base),
    }

    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story = []
    for kind, payload in CM.ESC_PDF:
        if kind in ("h1", "h2", "h3", "p"):
            story.append(Paragraph(esc(payload), st[kind]))
        elif kind == "ol":
            story += [Paragraph(esc(f"{i}. {x}"), st["li"]) for i, x in enumerate(payload, start=1)]
        elif kind == "ul":
            story += [Paragraph(esc(f"・{x}"), st["li"]) for x in payload]
        elif kind == "table":
            data = [[Paragraph(esc(c), st["cell"]) for c in row] for row in payload]
            ncol = len(payload[0])
            width = 170 * mm
            cw = [width / ncol] * ncol
            if ncol == 4:
                cw = [32 * mm, 58 * mm, 50 * mm, 30 * mm]
            t = Table(data, colWidths=cw, repeatRows=1)
            t.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                                   ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8f3ea")),
                                   ("VALIGN", (0, 0), (-1, -1), "TOP")]))
            story += [t, Spacer(1, 4 * mm)]
    doc = SimpleDocTemplate(str(path), pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title="エスカレーション規程およびクレーム初動対応基準",
                            author="株式会社ミドリ事務機 カスタマーサポート部", subject="エスカレーション規程",
                            creator="Hikitsugi sample builder", invariant=1)
    doc.build(story)


def build_manuals():
    d = SAMPLES / "manuals"
    d.mkdir(parents=True, exist_ok=True)
    (d / "mx3100_troubleshooting.md").write_text(CM.MX_MD, encoding="utf-8")
    (d / "contract_billing_guide.md").write_text(CM.CONTRACT_MD, encoding="utf-8")
    html = ("<!DOCTYPE html>\n<html lang=\"ja\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>ミドリ ネットワーク機器 設定・トラブル対応ガイド（MR-200 ／ MW-10）</title>\n"
            "<style>body{font-family:sans-serif;max-width:60em;margin:auto;line-height:1.7}"
            "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .6em}</style>\n"
            "</head>\n<body>\n" + CM.ROUTER_HTML_BODY + "</body>\n</html>\n")
    (d / "router_setup_guide.html").write_text(html, encoding="utf-8")
    (d / "handover_rules.txt").write_text(CM.HANDOVER_TXT, encoding="utf-8")
    build_docx(d / "kintai_cloud_faq.docx")
    build_pdf(d / "escalation_rules.pdf")
    return sorted(f"manuals/{p.name}" for p in d.iterdir() if p.is_file())


# ----------------------------------------------------------------------------- queries
KANJI = r"[\u4e00-\u9fff々〆ヶ]"


def content_terms(q: str) -> list[str]:
    """Rough content words of a query: kanji bigrams, katakana runs (≥2), latin/digit runs (≥2)."""
    s = nfkc(q)
    terms = []
    for run in re.findall(KANJI + "+", s):
        terms += [run[i:i + 2] for i in range(len(run) - 1)]
    terms += [r for r in re.findall(r"[\u30a1-\u30ffー]+", s) if len(r) >= 2]
    terms += [r for r in re.findall(r"[a-z0-9]+", s) if len(r) >= 2]
    return terms


def build_queries(rows, notes, mail_paths, manuals):
    by_type = collections.defaultdict(list)
    for r in rows:
        by_type[r["type"]].append(r)
    ptype = {p["key"]: p for p in PROBLEMS}
    note_id = {n["key"]: n["id"] for n in notes}
    corpus = set(r["id"] for r in rows) | set(n["id"] for n in notes) | set(c["id"] for c in CUSTOMERS)
    corpus |= set(manuals) | set(mail_paths.values())

    queries, qrels = [], []
    for i, q in enumerate(QUERIES, start=1):
        qid = f"q{i:03d}"
        rel: dict[str, int] = {}
        if q["type"] == "no_answer":
            pass
        elif "cust" in q:
            rel[q["cust"]] = 2
            for k in q["notes"]:
                rel[note_id[k]] = 2
            for k in q["mails"]:
                rel[mail_paths[k]] = 2
            for t in q["ccases"]:
                for r in by_type[t]:
                    if r["cid"] == q["cust"]:
                        rel[r["id"]] = 2
        elif "man2" in q:
            for m in q["man2"]:
                rel[m] = 2
            for t in q["types"]:
                for r in by_type[t][:8]:
                    rel.setdefault(r["id"], 1)
        else:
            for t in q["types"]:
                for r in by_type[t][:8]:
                    rel[r["id"]] = 2
                for m in ptype[t]["man"]:
                    rel.setdefault(m, 1)
        missing = [k for k in rel if k not in corpus]
        if missing:
            raise SystemExit(f"{qid}: qrels ids not in the corpus: {missing}")
        if q["type"] != "no_answer" and not rel:
            raise SystemExit(f"{qid}: no relevant documents")
        queries.append({"_id": qid, "text": q["text"], "type": q["type"], "_q": q, "_rel": rel})
        qrels += [(qid, k, v) for k, v in rel.items()]

    # --- checks: not copied from cases; noword queries share no content word with their cases
    case_texts = [(r["id"], r["text"], r["subj"]) for r in rows]
    full = {r["id"]: nfkc(" ".join([r["subj"], r["text"], r["first"], r["sol"], r["cause"], r["label"]])) for r in rows}
    problems, sims = [], []
    for q in queries:
        t = q["text"]
        for cid, text, subj in case_texts:
            if nfkc(t) in nfkc(text) or nfkc(t) in nfkc(subj) or t in text:
                problems.append(f"{q['_id']} is a substring of {cid}: {t}")
        best = max(((max(jaccard(t, text), jaccard(t, subj)), cid) for cid, text, subj in case_texts))
        q["_sim"] = best
        sims.append(best[0])
        if best[0] >= 0.6:
            problems.append(f"{q['_id']} too similar ({best[0]:.2f}) to {best[1]}: {t}")
        if q["type"] == "paraphrase_noword":
            shared = sorted({w for w in content_terms(t) for rid, s in q["_rel"].items()
                             if s == 2 and rid in full and w in full[rid]})
            if shared:
                problems.append(f"{q['_id']} (paraphrase_noword) shares {shared} with its cases: {t}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(f"{len(problems)} query check(s) failed")

    EVAL.joinpath("qrels").mkdir(parents=True, exist_ok=True)
    with (EVAL / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as fh:
        for q in queries:
            fh.write(json.dumps({"_id": q["_id"], "text": q["text"], "type": q["type"]}, ensure_ascii=False) + "\n")
    with (EVAL / "qrels" / "test.tsv").open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, did, s in qrels:
            fh.write(f"{qid}\t{did}\t{s}\n")
    (EVAL / "dataset.yaml").write_text(
        "ingest: [../../../data/samples]\n"
        "description: ミドリ事務機（架空）のサポート窓口で一次対応者が入力する日本語クエリと、過去事例・マニュアル・顧客カルテ・対応履歴の関連度ラベル\n",
        encoding="utf-8")
    return queries, qrels, sims


# ----------------------------------------------------------------------------- README
README = """\
# サンプルデータ / Sample data

株式会社ミドリ事務機（架空の会社）のカスタマーサポート窓口を想定した、Hikitsugi 同梱の日本語サンプルデータです。
**会社・顧客・人物・電話番号・メールアドレスはすべて架空です**（電話番号は 090-0000-xxxx 等、ドメインは example.jp）。
All companies, customers, people, phone numbers and addresses in this folder are fictional.

| パス / path | 内容 / content | 形式・文字コード / format, encoding |
|---|---|---|
| `manuals/mx3100_troubleshooting.md` | 複合機 MX-3100 トラブルシューティング / MFP troubleshooting | Markdown, UTF-8 |
| `manuals/contract_billing_guide.md` | 契約・請求・消耗品の手続き / contracts, billing, supplies | Markdown, UTF-8 |
| `manuals/router_setup_guide.html` | ルーター MR-200・Wi-Fi MW-10 設定ガイド / router & Wi-Fi guide | HTML, UTF-8 |
| `manuals/kintai_cloud_faq.docx` | 勤怠クラウド FAQ / attendance cloud FAQ | DOCX (Heading 1-3, tables) |
| `manuals/escalation_rules.pdf` | エスカレーション規程 / escalation rules | PDF (text layer, HeiseiKakuGo-W5) |
| `manuals/handover_rules.txt` | 引き継ぎルール / handover rules | plain text, UTF-8 |
| `escalations/escalation_history.csv` | エスカレーション履歴（1行＝1事例）/ ticket history, one case per row | CSV, **CP932 (Shift_JIS), CRLF**, Excel style |
| `notes/interaction_notes.jsonl` | 対応履歴メモ / interaction notes | JSON Lines, UTF-8 |
| `notes/mail/*.eml` | お客様からのメール / customer e-mails | RFC 5322; ISO-2022-JP and UTF-8 |
| `customers/customers.yaml` | 顧客別カルテ / customer records | YAML list, UTF-8 |

- CSV の列 / CSV columns: 受付番号, 受付日時 (`YYYY/MM/DD HH:MM`), 顧客名, 製品, カテゴリ, 件名, 問い合わせ内容, 一次対応, エスカレーション先, 解決策, 原因, 原因分類, 対応者, ステータス（完了／対応中／保留）。セル内改行あり / some cells contain line breaks.
- JSONL のキー / JSONL keys: 記録ID, 日時 (ISO 8601, +09:00), 顧客名, 記入者, チャネル（電話／メール／訪問）, 内容。
- YAML: id, name, aliases, rank, owner, products, commitments (what, reason, approved_by, valid_from, valid_until), arrangements, preferences, emergency_contacts (name, role, phone, note[, email]), notes。
- 評価用クエリ / labeled queries: `eval/datasets/support-ja/`（BEIR 形式）。
- 生成スクリプト / generator: `_build/build_samples.py`（決定的・ネットワーク不要 / deterministic, offline）。`_` で始まるフォルダは取り込み対象外です / folders starting with `_` are not ingested.
"""


# ----------------------------------------------------------------------------- main
def main():
    rows = build_cases()
    csv_path = write_cases_csv(rows)
    notes = build_notes(rows)
    mail_paths = build_mails()
    customers = build_customers()
    manuals = build_manuals()
    (SAMPLES / "README.md").write_text(README, encoding="utf-8")
    queries, qrels, sims = build_queries(rows, notes, mail_paths, manuals)

    # ------------------------------------------------------------------ statistics
    print("== files")
    total = 0
    for p in sorted(SAMPLES.rglob("*")):
        if p.is_file() and "_build" not in p.parts:
            total += p.stat().st_size
            print(f"  {p.relative_to(SAMPLES)}  {p.stat().st_size:,} bytes")
    print(f"  total data/samples (without _build): {total:,} bytes")
    assert total < 3_000_000
    print(f"== escalation_history.csv: {len(rows)} rows, {len(PROBLEMS)} problem types (原因分類), "
          f"{rows[0]['when']:%Y-%m-%d} .. {rows[-1]['when']:%Y-%m-%d}")
    print("   per year:", dict(collections.Counter(r["when"].year for r in rows)))
    print("   status:", dict(collections.Counter(r["status"] for r in rows)))
    print("   escalated:", sum(r["esc"] != "なし" for r in rows), " registered-customer rows:", sum(bool(r["cid"]) for r in rows))
    print("   cases per 原因分類:", ", ".join(f"{k}={v}" for k, v in collections.Counter(r["label"] for r in rows).items()))
    raw = csv_path.read_bytes()
    dec = raw.decode("cp932")
    crlf = raw.count(b"\r\n")
    hw = bool(re.search("[ｦ-ﾟ]", dec))
    print(f"   cp932 round trip ok: {dec.encode('cp932') == raw}; CRLF line ends: {crlf}; "
          f"contains 髙: {'髙' in dec}, ～: {'～' in dec}, half-width kana: {hw}")
    print(f"== interaction_notes.jsonl: {len(notes)} notes (hand-written {len(NOTES)}, follow-ups {len(notes) - len(NOTES)}); "
          f"channels {dict(collections.Counter(n['channel'] for n in notes))}")
    print(f"== mails: {sorted(mail_paths.values())}")
    today = TODAY
    coms = [c for cu in customers for c in cu["commitments"]]
    expired = sum(1 for c in coms if c["valid_until"] and c["valid_until"] < today)
    soon = sum(1 for c in coms if c["valid_until"] and today <= c["valid_until"] <= today + dt.timedelta(days=30))
    openended = sum(1 for c in coms if c["valid_until"] is None)
    print(f"== customers.yaml: {len(customers)} customers, ranks {dict(collections.Counter(c['rank'] for c in customers))}; "
          f"commitments {len(coms)} (expired before {today}: {expired}, expiring within 30 days: {soon}, open-ended: {openended})")
    print(f"== manuals: {manuals}")
    print(f"== queries: {len(queries)}  per type: {dict(collections.Counter(q['type'] for q in queries))}")
    print(f"   qrels lines: {len(qrels)}  (score 2: {sum(1 for x in qrels if x[2] == 2)}, score 1: {sum(1 for x in qrels if x[2] == 1)}); "
          f"queries with qrels: {len({x[0] for x in qrels})}")
    cust_mention = sum(1 for q in queries if q["type"] == "customer")
    print(f"   customer queries: {cust_mention}")
    bins = collections.Counter(min(int(s * 10), 9) for s in sims)
    print("   max char-bigram Jaccard(query, closest case 問い合わせ内容/件名) distribution:")
    for b in range(10):
        if bins[b]:
            print(f"     {b / 10:.1f}-{(b + 1) / 10:.1f}: {bins[b]}")
    print(f"   max={max(sims):.3f} mean={sum(sims) / len(sims):.3f}")


if __name__ == "__main__":
    main()
