"""Any ticket export, without a mapping file: columns recognized by name *and* by values.

Each variant below copies the header row (names, order, date format) of a real tool's
CSV export — Zendesk, Freshdesk, Jira Service Management, Backlog, Redmine, kintone,
Salesforce (English and Japanese), a LINE WORKS talk export — plus desk-made exports whose
names no alias list knows (起票日時 / チケット番号 / 対象サービス, and an English one). The
rows are what those tools hold: ids of their own shape, their own date formats, custom
fields, person and e-mail columns that must not be taken for anything they are not.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from conftest import run_cli
from hikitsugi.ingest.columns import AmbiguousColumns, recognize_columns
from hikitsugi.ingest.pipeline import SourceFile, parse_bytes

SYMPTOMS = [
    "トレイ2から給紙すると3回に1回くらい紙が詰まります。取り除いてもすぐまた詰まります。",
    "スキャンしてメールで送ったはずなのに届きません。昨日までは普通に使えてました。",
    "画面にE-203と出て止まってしまいました。電源を入れ直しても同じです。",
    "事務所のWi-Fiが午後になると何度も切れる。有線は問題なし。",
]
FIXES = [
    "給紙ローラーと分離パッドを交換し、搬送路を清掃。テスト印刷で再発なし。",
    "SMTPのポートを587、認証ONに変更し、送信用アカウントのパスワードを再登録。",
    "訪問にて定着ユニットを交換。エラー解消、テスト印刷良好。",
    "2.4GHzのチャネルを自動から固定に変更し、5GHz帯のSSIDへ切り替え。",
]


def _csv(headers: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue().encode(encoding)


def _parse(tmp_path: Path, name: str, data: bytes, mapping: dict[str, str] | None = None):
    p = tmp_path / name
    p.write_bytes(data)
    return parse_bytes(SourceFile(p, name), data, mapping)


# (tool, headers, rows, expected field → header, expected "how" prefix for some fields)
VARIANTS = [
    ("zendesk",
     ["Id", "Requester", "Requester email", "Assignee", "Group", "Subject", "Description", "Tags", "Status", "Priority",
      "Via", "Ticket type", "Created at", "Updated at", "Solved at", "Organization", "Resolution notes"],
     [[str(4101 + i), f"担当者{i}", f"user{i}@example.jp", "鈴木 健太", "Tier 2", f"件名{i}", SYMPTOMS[i], "mx",
       "solved", "normal", "Web Form", "Incident", f"2024-05-0{i + 1} 10:1{i}", f"2024-05-0{i + 2} 09:00",
       f"2024-05-0{i + 2} 17:00", "株式会社青葉物流", FIXES[i]] for i in range(4)],
     {"id": "Id", "date": "Created at", "title": "Subject", "body": "Description", "customer": "Organization",
      "resolution": "Resolution notes", "channel": "Via", "status": "Status"}, {}),
    ("freshdesk",
     ["Ticket ID", "Subject", "Description", "Status", "Priority", "Source", "Type", "Agent", "Group", "Created time",
      "Due by Time", "Resolved time", "Closed time", "Last update time", "Resolution status", "Product",
      "Company Name", "Full name", "Email"],
     [[str(210 + i), f"件名{i}", SYMPTOMS[i], "Closed", "Medium", "Phone", "Incident", "田中 彩", "二次サポート",
       f"2025-02-1{i} 09:3{i}:00", f"2025-02-1{i + 2} 09:30:00", f"2025-02-1{i} 15:00:00", f"2025-02-1{i + 1} 09:00:00",
       f"2025-02-1{i + 1} 09:00:00", "Within SLA", "MX-3100", "さくら総合会計事務所", "川口 由美",
       f"kawaguchi{i}@example.jp"] for i in range(4)],
     {"id": "Ticket ID", "date": "Created time", "title": "Subject", "body": "Description", "product": "Product",
      "customer": "Company Name", "resolved_by": "Agent", "channel": "Source", "category": "Type"}, {}),
    ("jira-service-management",
     ["Summary", "Issue key", "Issue id", "Issue Type", "Status", "Priority", "Resolution", "Assignee", "Reporter",
      "Created", "Updated", "Resolved", "Description", "Component/s", "Custom field (Request Type)",
      "Custom field (Organizations)"],
     [[f"件名{i}", f"SUP-{318 + i}", str(10042 + i), "Service Request", "Done", "Medium", "Done", "吉田 亮",
       "customer", f"1{i}/Jan/24 3:4{i} PM", f"1{i}/Jan/24 5:00 PM", f"1{i}/Jan/24 5:00 PM", SYMPTOMS[i], "複合機",
       "障害の報告", "北斗精工株式会社"] for i in range(4)],
     {"id": "Issue key", "date": "Created", "title": "Summary", "body": "Description", "product": "Component/s",
      "customer": "Custom field (Organizations)", "category": "Custom field (Request Type)"}, {}),
    ("backlog",
     ["ID", "プロジェクトID", "プロジェクト名", "キーID", "キー", "種別ID", "種別", "カテゴリーID", "カテゴリー名", "件名", "詳細",
      "状態ID", "状態", "優先度", "担当者", "完了理由", "登録者", "登録日", "開始日", "期限日", "更新者", "更新日"],
     [[str(88001 + i), "1203", "サポート", str(40 + i), f"SUP-{40 + i}", "2", "障害", "7", "複合機", f"件名{i}",
       SYMPTOMS[i], "4", "完了", "中", "渡辺 剛", "対応済み", "佐藤 美咲", f"2024/06/0{i + 1}", f"2024/06/0{i + 1}",
       f"2024/06/1{i}", "渡辺 剛", f"2024/06/1{i}"] for i in range(4)],
     {"id": "ID", "date": "登録日", "title": "件名", "body": "詳細", "status": "状態", "cause_group": "完了理由",
      "category": "カテゴリー名"}, {}),
    ("redmine",
     ["#", "プロジェクト", "トラッカー", "親チケット", "ステータス", "優先度", "題名", "作成者", "担当者", "更新日", "カテゴリ",
      "対象バージョン", "開始日", "期日", "作成日", "終了日", "説明"],
     [[str(1520 + i), "ヘルプデスク", "サポート", "", "終了", "通常", f"題名{i}", "佐藤 美咲", "吉田 亮",
       f"2025/03/1{i} 18:00", "ネットワーク", "", f"2025/03/0{i + 1}", "", f"2025/03/0{i + 1} 10:0{i}",
       f"2025/03/1{i}", SYMPTOMS[i]] for i in range(4)],
     {"id": "#", "date": "作成日", "title": "題名", "body": "説明", "status": "ステータス", "category": "カテゴリ"}, {}),
    ("kintone",
     ["レコード番号", "作成者", "作成日時", "更新者", "更新日時", "受付日時", "顧客名", "担当者", "製品名", "問い合わせ内容",
      "対応内容", "対応状況"],
     [[str(31 + i), "佐藤 美咲", f"2026-01-0{i + 5}T01:1{i}:00Z", "佐藤 美咲", f"2026-01-0{i + 6}T01:00:00Z",
       f"2026-01-0{i + 5} 10:1{i}", "株式会社ロータス薬局", "林 恵子", "MX-3100", SYMPTOMS[i], FIXES[i], "完了"]
      for i in range(4)],
     {"id": "レコード番号", "date": "受付日時", "customer": "顧客名", "product": "製品名", "body": "問い合わせ内容",
      "resolution": "対応内容", "status": "対応状況"}, {}),
    ("salesforce-en",
     ["Case Number", "Subject", "Description", "Status", "Priority", "Case Origin", "Case Reason", "Account Name",
      "Contact Name", "Product", "Date/Time Opened", "Date/Time Closed", "Case Owner", "Type"],
     [[f"0000{1030 + i}", f"Subject {i}", SYMPTOMS[i], "Closed", "High", "Phone", "Equipment failure",
       "Harbor Realty Co.", "Miyake Jun", "MR-200", f"4/1{i}/2025 9:3{i} AM", f"4/1{i}/2025 4:00 PM", "Ishida Ken",
       "Problem"] for i in range(4)],
     {"id": "Case Number", "date": "Date/Time Opened", "title": "Subject", "body": "Description",
      "customer": "Account Name", "cause_group": "Case Reason", "channel": "Case Origin", "product": "Product"}, {}),
    ("salesforce-ja",
     ["ケース番号", "件名", "説明", "状況", "優先度", "発生源", "ケースの原因", "取引先名", "取引先責任者名", "製品", "作成日時",
      "完了日時", "ケース所有者", "種別"],
     [[f"0000{2040 + i}", f"件名{i}", SYMPTOMS[i], "クローズ", "高", "電話", "機器の故障", "株式会社ハーバー不動産",
       "三宅 純", "MR-200", f"2025/04/1{i} 9:3{i}", f"2025/04/1{i} 16:00", "石田 健", "障害"] for i in range(4)],
     {"id": "ケース番号", "date": "作成日時", "title": "件名", "body": "説明", "customer": "取引先名",
      "cause_group": "ケースの原因", "channel": "発生源", "status": "状況", "resolved_by": "ケース所有者"}, {}),
    ("line-works",
     ["トークルーム", "送信日時", "送信者", "メッセージ", "メッセージID"],
     [["株式会社フジミ運輸", f"2026/02/0{i + 2} 07:1{i}", "内田", SYMPTOMS[i], f"m-{90017 + i}"] for i in range(4)],
     {"id": "メッセージID", "date": "送信日時", "customer": "トークルーム", "body": "メッセージ", "resolved_by": "送信者"},
     {}),
    # the desk-made export: 起票日時 is known by no alias list; recognized by its values
    ("desk-made-ja",
     ["チケット番号", "起票日時", "更新日時", "対象サービス", "件名", "お客様の声", "解決策", "解決の分類"],
     [[f"TK-2024-{i:05d}", f"2024/0{i + 1}/03 09:1{i}", f"2024/0{i + 1}/1{i} 18:00", "複合機保守", f"件名{i}",
       SYMPTOMS[i % 4] + f"（{i + 1}件目）", FIXES[i % 4], ["部品交換", "設定変更", "部品交換", "設定変更", "清掃"][i % 5]] for i in range(9)]
     + [[f"TK-2024-{i:05d}", f"2024/0{i - 8}/2{i - 8} 13:0{i - 8}", f"2024/0{i - 8}/2{i - 7} 10:00", "ネットワーク",
         f"件名{i}", SYMPTOMS[i % 4] + f"（{i + 1}件目）", FIXES[i % 4], ["設定変更", "清掃"][i % 2]] for i in range(9, 12)],
     {"id": "チケット番号", "date": "起票日時", "product": "対象サービス", "title": "件名", "body": "お客様の声",
      "resolution": "解決策", "cause_group": "解決の分類"},
     {"date": "values", "body": "values", "cause_group": "values"}),
    ("desk-made-en",
     ["Ref", "Logged", "Client", "Problem as reported", "What we did", "Bucket", "Closed on"],
     [[f"R{7001 + i}", f"2025-0{1 + i % 9}-1{i % 9} 11:0{i % 9}", "Aoba Logistics", f"{SYMPTOMS[i % 4]}（{i}）", FIXES[i % 4],
       ["Hardware", "Settings", "Network"][i % 3], f"2025-0{1 + i % 9}-2{i % 9} 09:00"] for i in range(12)],
     {"id": "Ref", "date": "Logged", "body": "Problem as reported", "resolution": "What we did",
      "cause_group": "Bucket"},
     {"id": "values", "date": "values", "body": "values", "cause_group": "values"}),
]


@pytest.mark.parametrize("tool,headers,rows,expected,how", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_export_headers_of_real_tools_read_without_a_mapping(tmp_path, tool, headers, rows, expected, how):
    mapping = {"resolution": "What we did"} if tool == "desk-made-en" else None  # a mapping completes the guess
    res = _parse(tmp_path, f"{tool}.csv", _csv(headers, rows), mapping)
    assert res.error is None, res.error
    got = {r.field: r for r in res.columns}
    for field, header in expected.items():
        assert field in got, f"{tool}: {field} not recognized; got {[str(r) for r in res.columns]}"
        assert got[field].header == header, f"{tool}: {field} ← {got[field]} (expected {header})"
    for field, prefix in how.items():
        assert got[field].how.startswith(prefix), str(got[field])
    assert len(res.docs) == len(rows)
    for doc in res.docs:
        assert doc.meta["occurred_at"], f"{tool}: {doc.source_id} has no date"
        assert any(s in doc.body for s in SYMPTOMS), doc.body
    ids = [d.source_id for d in res.docs]
    assert len(set(ids)) == len(rows) and all("#" not in i for i in ids), ids  # the id column, not file#row
    # nothing personal is taken for an id, a customer or a text
    for r in res.columns:
        assert r.header not in ("Requester email", "Email", "Full name", "取引先責任者名", "Contact Name"), str(r)


def test_dates_of_every_export_read_right(tmp_path):
    """Jira's 12/Jan/24 3:42 PM, Salesforce's 4/10/2025 9:30 AM, kintone's UTC ISO, 起票日時 2024/01/03 09:10."""
    by_tool = {v[0]: v for v in VARIANTS}
    want = {"jira-service-management": "2024-01-10T15:40", "salesforce-en": "2025-04-10T09:30",
            "kintone": "2026-01-05T10:10", "desk-made-ja": "2024-01-03T09:10", "line-works": "2026-02-02T07:10"}
    for tool, iso in want.items():
        _, headers, rows, _, _ = by_tool[tool]
        res = _parse(tmp_path, f"{tool}.csv", _csv(headers, rows))
        assert res.docs[0].meta["occurred_at"].startswith(iso), (tool, res.docs[0].meta["occurred_at"])


def test_ambiguous_dates_are_an_error_naming_the_candidates(tmp_path):
    """Two date columns, names that say nothing about which is the opening date, and
    neither always earlier: the file is refused with both names and how to choose."""
    headers = ["管理No", "日付A", "日付B", "お客様の声", "解決策"]
    rows = [[f"K-{i}", f"2025/05/0{1 + i} 10:00", f"2025/05/0{4 - i} 10:00", SYMPTOMS[i], FIXES[i]] for i in range(4)]
    res = _parse(tmp_path, "ambiguous.csv", _csv(headers, rows))
    assert res.error is not None and not res.docs
    assert "'日付A'" in res.error and "'日付B'" in res.error
    assert "date: <column>" in res.error and "--time-column" in res.error
    with pytest.raises(AmbiguousColumns) as exc:
        recognize_columns(headers, [dict(zip(headers, r)) for r in rows])
    assert exc.value.candidates == ["日付A", "日付B"]
    # ... and the mapping settles it
    res = _parse(tmp_path, "ambiguous.csv", _csv(headers, rows), {"date": "日付B"})
    assert res.error is None and res.docs[0].meta["occurred_at"].startswith("2025-05-04")


def test_an_always_earlier_date_column_is_the_opening_date(tmp_path):
    """No name hint at all (日付1, 日付2), but one column is never later than the other."""
    headers = ["番号", "日付1", "日付2", "内容"]
    rows = [[str(i), f"2025/06/1{i} 09:00", f"2025/06/1{i} 1{i}:30", SYMPTOMS[i]] for i in range(4)]
    res = _parse(tmp_path, "two-dates.csv", _csv(headers, rows))
    got = {r.field: r for r in res.columns}
    assert got["date"].header == "日付1" and "never later" in got["date"].how


def test_two_group_like_neighbours_are_not_guessed(tmp_path):
    """Both neighbours of the resolution are low-cardinality with uninformative names:
    no guess, a warning that names them."""
    headers = ["ID", "受付日時", "内容", "X列", "解決策", "Y列"]
    rows = [[f"A-{i}", f"2025/07/{10 + i} 10:00", SYMPTOMS[i % 4], "甲乙"[i % 2], FIXES[i % 4], "丙丁"[i % 2]]
            for i in range(12)]
    res = _parse(tmp_path, "groups.csv", _csv(headers, rows))
    assert res.error is None
    assert "cause_group" not in {r.field for r in res.columns}
    assert any("'X列'" in p and "'Y列'" in p for p in res.problems), res.problems


def test_a_phone_column_is_never_the_id(tmp_path):
    headers = ["電話", "受付日時", "内容"]
    rows = [[f"090-0000-12{i}{i}", f"2025/07/1{i} 10:00", SYMPTOMS[i]] for i in range(4)]
    res = _parse(tmp_path, "phones.csv", _csv(headers, rows))
    assert "id" not in {r.field for r in res.columns}
    assert all(d.source_id.startswith("phones.csv#") for d in res.docs)


def test_ingest_says_on_stderr_what_was_recognized_and_how(tmp_path, make_home):
    """The CLI reports, per export, each field with the column and how it was found."""
    _, headers, rows, _, _ = next(v for v in VARIANTS if v[0] == "desk-made-ja")
    f = tmp_path / "export.csv"
    f.write_bytes(_csv(headers, rows, "cp932"))
    home = make_home("columns-cli")
    r = run_cli("ingest", str(f), env_home=home, model=Path(os.environ["HIKITSUGI_MODEL"]))
    assert r.returncode == 0, r.stderr
    assert "columns: " in r.stderr and "date ← 起票日時 (values:" in r.stderr, r.stderr
    assert "id ← チケット番号 (name)" in r.stderr and "product ← 対象サービス (name)" in r.stderr
    assert "cause_group ← 解決の分類 (values:" in r.stderr
    assert "columns" not in r.stdout
