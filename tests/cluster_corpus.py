"""A few thousand short escalation cases in several CP932 CSV files, for the Ray and
replica tests: enough rows that a cluster has work to share, short enough texts that
embedding them twice (cluster and single process) fits in CI.

Cases are combinations of a customer, a product, a symptom and a fix, each written the
way a support desk's export has them (受付番号, 受付日時, 顧客名, 問い合わせ内容, 解決策, 原因,
ステータス); the manuals of ``corpus.py`` come along so that sentence vectors are built too.
"""

from __future__ import annotations

import random
from pathlib import Path

from corpus import MANUALS, write_csv

CUSTOMERS = ["青葉商事", "緑川工業", "東雲物産", "ひかり運輸", "若葉設計", "コスモ保険", "さくら医院", "はやて電機",
             "みなと食品", "北斗建設", "白樺不動産", "朝日印刷"]
PRODUCTS = ["複合機MX-3100", "ルーターRT-20", "勤怠クラウド", "会計ソフト", "電子契約サービス", "IP電話",
            "ノートPC", "無線LAN", "ファイルサーバー", "Web会議システム"]
SYMPTOMS = [("起動しない", "電源ユニットの故障"), ("動作が遅い", "ディスク容量の不足"),
            ("ログインできない", "アカウントのロック"), ("エラーコードE-102が出る", "設定ファイルの破損"),
            ("接続が頻繁に切れる", "電波干渉"), ("印刷がかすれる", "トナーの劣化"),
            ("メールが届かない", "送信サーバーの移行"), ("画面が真っ暗になる", "ドライバーの不具合"),
            ("データが保存できない", "権限設定の誤り"), ("音声が途切れる", "回線の帯域不足")]
FIXES = ["再起動後に最新版へ更新した", "設定を初期化して再投入した", "部品を交換した", "アカウントを再発行した",
         "チャネルを固定に変更した", "権限を付け直した", "手順書を送付して操作を案内した", "代替機を手配した"]
QUERIES = ["複合機が起動しない", "ルーターの接続が切れる", "勤怠クラウドにログインできない", "会計ソフトが遅い",
           "Web会議の音声が途切れる", "ファイルサーバーに保存できない"]


def cases(n: int, seed: int = 17) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cust, prod = rng.choice(CUSTOMERS), rng.choice(PRODUCTS)
        symptom, cause = rng.choice(SYMPTOMS)
        fix = rng.choice(FIXES)
        out.append([f"RAY-{i:05d}", f"2025/{1 + i % 12:02d}/{1 + i % 28:02d} {9 + i % 9:02d}:{i % 60:02d}", cust,
                    f"{prod}が{symptom}（{i}件目）。", f"{prod}は{fix}。", cause,
                    "完了" if i % 5 else "対応中"])
    return out


def write_cases(root: Path, rows: list[list[str]], files: int) -> None:
    per = -(-len(rows) // files)
    for f in range(files):
        write_csv(root / "escalations" / f"cases-{f:02d}.csv", rows[f * per:(f + 1) * per])


def write_corpus(root: Path, n: int, files: int = 8) -> tuple[Path, list[list[str]]]:
    """n cases in ``files`` CSV files plus three manuals; returns (sources file, rows)."""
    (root / "manuals").mkdir(parents=True, exist_ok=True)
    for name, text in MANUALS.items():
        (root / "manuals" / name).write_text(text, encoding="utf-8")
    rows = cases(n)
    write_cases(root, rows, files)
    sources = root / "sources.yaml"
    sources.write_text("sources:\n  - path: manuals\n    glob: '*.md'\n  - path: escalations\n    glob: '*.csv'\n",
                       encoding="utf-8")
    return sources, rows


def change_resolutions(root: Path, rows: list[list[str]], every: int, tag: str, files: int = 8) -> int:
    """Rewrite the resolution of every ``every``-th case (a day's edits); returns how many."""
    n = 0
    for i in range(0, len(rows), every):
        rows[i][4] = f"{rows[i][4]} {tag}（{rows[i][0]}）として再発防止策を共有した。"
        n += 1
    write_cases(root, rows, files)
    return n
