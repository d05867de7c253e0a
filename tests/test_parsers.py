"""Each format parses into blocks with headings and table rows; bad files give clear reasons."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import pytest

from hikitsugi.ingest.pipeline import SourceFile, discover, parse_bytes


def parse(path: Path, data: bytes):
    return parse_bytes(SourceFile(path, path.name), data)


def test_markdown_headings_and_table(tmp_path):
    md = "# MX-3100 マニュアル\n\n## 紙詰まり\n\n給紙トレイを引き出します。\n\n| コード | 意味 |\n|---|---|\n| E-203 | 給紙不良 |\n"
    res = parse(tmp_path / "m.md", md.encode())
    doc = res.docs[0]
    assert doc.title == "MX-3100 マニュアル"
    assert doc.blocks[0].headings == ("MX-3100 マニュアル", "紙詰まり")
    rows = [b.text for b in doc.blocks if b.table_row]
    assert rows == ["コード | 意味", "E-203 | 給紙不良"]


def test_html_in_shift_jis_with_meta_charset(tmp_path):
    html = ('<html><head><meta charset="Shift_JIS"><title>ルーター設定</title></head><body>'
            "<h1>ルーター設定</h1><h2>Wi-Fiが切れる</h2><p>髙速モードをオフにします。</p>"
            "<table><tr><th>項目</th><th>値</th></tr><tr><td>チャネル</td><td>自動</td></tr></table></body></html>")
    res = parse(tmp_path / "r.html", html.encode("cp932"))
    doc = res.docs[0]
    assert doc.title == "ルーター設定"
    para = [b for b in doc.blocks if not b.table_row][0]
    assert para.text == "髙速モードをオフにします。" and para.headings == ("ルーター設定", "Wi-Fiが切れる")
    assert [b.text for b in doc.blocks if b.table_row] == ["項目 | 値", "チャネル | 自動"]


def test_docx_headings_and_table(tmp_path):
    from docx import Document

    d = Document()
    d.add_heading("勤怠クラウド FAQ", 1)
    d.add_heading("ログインできない", 2)
    d.add_paragraph("パスワードを再設定してください。")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "症状", "対処"
    t.cell(1, 0).text, t.cell(1, 1).text = "ロック", "管理者が解除"
    buf = io.BytesIO()
    d.save(buf)
    doc = parse(tmp_path / "f.docx", buf.getvalue()).docs[0]
    assert doc.blocks[0].text == "パスワードを再設定してください。"
    assert doc.blocks[0].headings == ("勤怠クラウド FAQ", "ログインできない")
    assert "ロック | 管理者が解除" in [b.text for b in doc.blocks if b.table_row]


def test_pdf_text_layer_lines_joined_and_headings(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    path = tmp_path / "rules.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("HeiseiKakuGo-W5", 18)
    c.drawString(50, 800, "エスカレーション基準")
    c.setFont("HeiseiKakuGo-W5", 10)
    c.drawString(50, 770, "人命や身体に危険がある場合は、ただちに責任者へエスカレーショ")
    c.drawString(50, 755, "ンします。")
    c.save()
    doc = parse(path, path.read_bytes()).docs[0]
    assert doc.title == "エスカレーション基準"
    assert "ただちに責任者へエスカレーションします。" in doc.body


def test_eml_iso2022jp(tmp_path):
    msg = EmailMessage()
    msg["Subject"] = "複合機の印刷がかすれる件"
    msg["From"] = "tanaka@example.jp"
    msg["Date"] = "Tue, 05 Nov 2024 10:00:00 +0900"
    msg.set_content("お世話になっております。\n印刷が薄くなりました。", charset="iso-2022-jp")
    res = parse(tmp_path / "m.eml", bytes(msg))
    doc = res.docs[0]
    assert doc.title == "複合機の印刷がかすれる件"
    assert "印刷が薄くなりました。" in doc.body
    assert doc.meta["occurred_at"].startswith("2024-11-05")


def test_cp932_csv_with_japanese_headers_and_a_broken_row(tmp_path):
    csv_text = ("受付番号,受付日時,顧客名,問い合わせ内容,解決策,原因,ステータス\r\n"
                "INC-1,2024/04/01 10:00,株式会社青葉物流,①番トレイで紙詰まり,ローラー清掃,ローラー摩耗,完了\r\n"
                "INC-2,2024/04/02,髙田商事,壊れた行,\"閉じていない引用\r\n"
                "INC-3,2024年4月3日,髙田商事,ログインできない,パスワード再設定,失念,完了\r\n")
    res = parse(tmp_path / "h.csv", csv_text.encode("cp932"))
    ids = [d.source_id for d in res.docs]
    assert "INC-1" in ids and res.error is None
    d1 = res.docs[0]
    assert d1.kind == "case" and d1.meta["customer"] == "株式会社青葉物流"
    assert d1.meta["resolution"] == "ローラー清掃" and d1.meta["occurred_at"].startswith("2024-04-01")
    assert "①番トレイ" in d1.body


def test_csv_with_broken_row_reports_row_number(tmp_path):
    text = "受付番号,問い合わせ内容,解決策\nA1,紙詰まり,清掃\nA2,余計な,列が,ある\nA3,ログイン,再設定\n"
    res = parse(tmp_path / "x.csv", text.encode())
    assert [d.source_id for d in res.docs] == ["A1", "A3"]
    assert any("row 3" in p for p in res.problems)


@pytest.mark.parametrize("name,data,reason", [
    ("empty.md", b"", "empty file"),
    ("binary.csv", bytes(range(256)) * 20, "binary"),
    ("broken.pdf", b"%PDF-1.4\n garbage", "PDF"),
    ("locked.docx", b"\xd0\xcf\x11\xe0" + b"\x00" * 600, "DOCX"),
    ("noheader.csv", "a,b\n1,2\n".encode(), "no text column"),
])
def test_bad_files_fail_with_a_reason(tmp_path, name, data, reason):
    res = parse(tmp_path / name, data)
    assert res.docs == []
    assert res.error and reason in res.error


def test_discover_reports_unsupported_and_keeps_japanese_names(tmp_path):
    (tmp_path / "手順書.md").write_text("# 手順\n本文。", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    files, problems = discover([tmp_path])
    assert [f.rel for f in files] == ["手順書.md"]
    assert any("image.png" in p for p in problems)


_ROWS = [
    {"チケット番号": "T-1", "日時": "2024/05/01 09:30", "会社名": "株式会社青葉物流", "内容": "トレイ2で紙詰まりが続く",
     "対応内容": "給紙ローラーを交換", "原因": "ローラー摩耗", "状態": "完了"},
    {"チケット番号": "T-2", "日時": "2024年5月2日", "会社名": "北斗精工株式会社", "内容": "ログインできない",
     "対応内容": "パスワードを再設定", "原因": "失念", "状態": "完了"},
]


def _records_as(fmt: str) -> bytes:
    import csv
    import json

    headers = list(_ROWS[0])
    if fmt in ("csv-eucjp", "tsv-bom"):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter="\t" if fmt == "tsv-bom" else ",", lineterminator="\r\n")
        w.writerow(headers)
        w.writerows([r[h] for h in headers] for r in _ROWS)
        return buf.getvalue().encode("euc_jp" if fmt == "csv-eucjp" else "utf-8-sig")
    if fmt == "json":
        return json.dumps(_ROWS, ensure_ascii=False).encode()
    if fmt == "jsonl":
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in _ROWS).encode()
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(headers)
    for r in _ROWS:
        ws.append([r[h] for h in headers])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize("fmt,suffix", [("csv-eucjp", ".csv"), ("tsv-bom", ".tsv"), ("json", ".json"),
                                        ("jsonl", ".jsonl"), ("xlsx", ".xlsx")])
def test_records_in_every_export_format_read_alike(tmp_path, fmt, suffix):
    """The same two cases exported as EUC-JP CSV, UTF-8-BOM TSV, JSON, JSONL and XLSX, with
    headers other tools use (チケット番号, 会社名, 内容, 対応内容, 状態): recognized without config."""
    res = parse(tmp_path / f"export{suffix}", _records_as(fmt))
    assert res.error is None, res.error
    docs = {d.source_id: d for d in res.docs}
    assert set(docs) == {"T-1", "T-2"}
    t1 = docs["T-1"]
    assert t1.kind == "case" and t1.meta["customer"] == "株式会社青葉物流"
    assert t1.meta["resolution"] == "給紙ローラーを交換" and t1.meta["cause"] == "ローラー摩耗"
    assert t1.meta["occurred_at"].startswith("2024-05-01") and docs["T-2"].meta["occurred_at"].startswith("2024-05-02")
    assert "紙詰まり" in t1.body


@pytest.mark.parametrize("charset", ["utf-8", "shift_jis"])
def test_eml_utf8_and_shift_jis(tmp_path, charset):
    msg = EmailMessage()
    msg["Subject"] = "ルーターが再起動を繰り返す"
    msg["From"] = "support@example.jp"
    msg.set_content("夜間にルーターが何度も再起動します。", charset=charset)
    res = parse(tmp_path / "r.eml", bytes(msg))
    doc = res.docs[0]
    assert doc.title == "ルーターが再起動を繰り返す" and "何度も再起動します。" in doc.body
