"""A small Japanese support corpus for the re-index tests, and ways to change it.

Three Markdown manuals and a CP932 CSV of escalation cases (Excel-style export with the
headers 受付番号,受付日時,顧客名,問い合わせ内容,解決策,原因,ステータス). Small on
purpose: embedding runs at ~15 chunks/s on two cores.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select

HEADERS = ["受付番号", "受付日時", "顧客名", "問い合わせ内容", "解決策", "原因", "ステータス"]
CASES = [
    ["INC-24-0001", "2024-03-05 10:12", "青葉商事", "複合機MX-3100で紙詰まりが一日に何度も起きる。",
     "給紙ローラーを交換し、用紙を乾燥した場所に保管するよう案内した。", "給紙ローラーの摩耗", "完了"],
    ["INC-24-0002", "2024-04-11 14:30", "緑川工業", "スキャンした文書がメールで届かない。",
     "複合機のSMTPサーバー設定を新しいサーバーに変更した。", "メールサーバーの移行", "完了"],
    ["INC-24-0003", "2024-05-20 09:05", "東雲物産", "VPNに接続できず社内システムが使えない。",
     "ルーターのファームウェアを更新し、VPN設定を再投入した。", "ファームウェアの不具合", "完了"],
    ["INC-24-0004", "2024-06-02 16:45", "ひかり運輸", "勤怠クラウドにログインできない。パスワードは合っているはず。",
     "アカウントロックを解除し、パスワード再設定の手順を案内した。", "連続ログイン失敗によるロック", "完了"],
    ["INC-24-0005", "2024-07-18 11:00", "青葉商事", "印刷が薄くかすれる。",
     "トナーカートリッジを交換し、濃度設定を標準に戻した。", "トナー残量不足", "完了"],
    ["INC-24-0006", "2024-08-09 13:20", "若葉設計", "請求書の金額が契約と違う。",
     "契約管理システムの単価を修正し、請求書を再発行した。", "単価マスタの登録誤り", "対応中"],
]

MANUALS = {
    "printer.md": """# MX-3100 トラブルシューティング

## 紙詰まり

紙詰まりが起きたら、前面カバーを開けて詰まった用紙をゆっくり引き抜いてください。
湿った用紙は詰まりの原因になります。用紙は乾燥した場所に保管してください。

## 印刷がかすれる

トナーの残量を操作パネルで確認してください。残量が少ない場合はトナーカートリッジを交換します。
""",
    "network.md": """# ルーター設定ガイド

## VPN接続

VPNに接続できない場合は、ルーターのファームウェアが最新か確認してください。
設定画面の「VPN」から事前共有キーを再入力します。

## 無線LAN

無線LANが不安定なときは、チャネルを自動から固定に変更すると改善することがあります。
""",
    "login.md": """# 勤怠クラウド FAQ

## パスワードを忘れた

ログイン画面の「パスワードを忘れた方」からメールアドレスを入力すると、再設定用のリンクが届きます。
5回続けて失敗するとアカウントが30分ロックされます。
""",
}

SCANNER = """# スキャナー設定マニュアル

""" + "\n".join(
    f"## 設定項目{i}\n\nスキャン設定の項目{i}では、解像度を{100 + i * 50}dpiに変更できます。"
    f"送信先フォルダー{i}を指定すると、スキャンした文書が自動で保存されます。\n"
    for i in range(1, 13)
)

QUERIES = ["紙詰まりが何度も起きる", "VPNにつながらない", "パスワードを忘れてログインできない",
           "スキャンしたメールが届かない", "印刷が薄い", "スキャンの解像度を変えたい"]


def write_csv(path: Path, rows: list[list[str]], headers: list[str] = HEADERS) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode("cp932"))


def write_v1(root: Path) -> Path:
    """Write the base corpus under root and a sources file for it; returns the sources file."""
    (root / "manuals").mkdir(parents=True, exist_ok=True)
    for name, text in MANUALS.items():
        (root / "manuals" / name).write_text(text, encoding="utf-8")
    write_csv(root / "escalations" / "cases.csv", CASES)
    sources = root / "sources.yaml"
    sources.write_text("sources:\n  - path: manuals\n    glob: '*.md'\n  - path: escalations/cases.csv\n",
                       encoding="utf-8")
    return sources


# Mutations: each changes the corpus on disk the way a day of work would.

def change_manual(root: Path) -> None:
    p = root / "manuals" / "printer.md"
    p.write_text(p.read_text(encoding="utf-8").replace(
        "湿った用紙は詰まりの原因になります。", "湿った用紙や折れた用紙は詰まりの原因になります。給紙ローラーも点検してください。"),
        encoding="utf-8")


def change_and_delete_rows(root: Path) -> None:
    rows = [list(r) for r in CASES if r[0] != "INC-24-0006"]
    rows[1][4] = "SMTP認証をOAuthに切り替え、送信テストを行った。"
    write_csv(root / "escalations" / "cases.csv", rows)


def delete_manual(root: Path) -> None:
    (root / "manuals" / "login.md").unlink()


def add_manual(root: Path) -> None:
    (root / "manuals" / "scanner.md").write_text(SCANNER, encoding="utf-8")


MUTATIONS = [change_manual, change_and_delete_rows, delete_manual, add_manual]


def db_state(settings) -> dict[str, tuple]:
    """What the index should contain: live documents with their chunk texts, by source id."""
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document

    session = session_for(settings.db_url)
    try:
        out: dict[str, tuple] = {}
        docs = session.scalars(select(Document).where(Document.retired_at.is_(None))).all()
        for d in docs:
            assert d.source_id not in out, f"two live rows for {d.source_id}"
            texts = session.scalars(select(Chunk.text).where(Chunk.document_id == d.id).order_by(Chunk.ordinal)).all()
            out[d.source_id] = (d.kind, d.title, d.source_path, tuple(texts))
        return out
    finally:
        session.close()


def search_state(settings, queries=QUERIES, k: int = 5) -> dict[str, list[tuple[str, str, float]]]:
    """Top-k (source id, passage, score) per query from the current index generation."""
    from hikitsugi.search.service import search

    out = {}
    for q in queries:
        resp = search(q, settings, k=k)
        out[q] = [(r.source_id, r.passage, round(r.score, 3)) for r in resp.results]
    return out


def assert_same_search(a: dict, b: dict) -> None:
    for q in a:
        assert [x[:2] for x in a[q]] == [x[:2] for x in b[q]], q
        for x, y in zip(a[q], b[q]):
            assert abs(x[2] - y[2]) < 2e-3, (q, x, y)
