"""Content gaps become articles, end to end, over real HTTP and in a real browser.

A desk whose knowledge says nothing about card-reader log-in. Agents ask about it four
ways and get no confident answer (the search log records it); second line later resolves
such escalations; the lead's draft for that gap is assembled from the logged phrasings
and those cases — every sentence with its source, nothing else; the lead accepts it into
the knowledge folder the sources file lists as manuals; after the nightly re-index the
same four questions find the article in their top 3. The draft as the lead page renders
it is photographed (Debian Chromium via Playwright) into tests/artifacts/draft-article.png
(and docs/images/draft-article.png with HIKITSUGI_DOC_IMAGES=1).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import REPO, free_port, run_cli
from test_widget_e2e import CHROME_ARGS, chromium  # noqa: F401  (the Debian Chromium fixture)

pytestmark = pytest.mark.slow

QUERIES = ["社員証をかざしても複合機にログインできない", "社員証をタッチしても複合機のログイン画面から進まない",
           "ICカードをかざしても複合機にログインできない", "社員証かざしても複合機にログインできません"]
MANUAL = """# 複合機 MX-3100 かんたんガイド

第1.0版（2025年4月改定）

## 紙詰まり

1. 操作パネルの表示で詰まった場所を確認する。
2. トレイを引き出し、用紙をゆっくり引き抜く。

## かすれる

トナーを取り出して左右に振り、セットし直す。改善しない場合はトナーを交換する。
"""
OLD = [("OLD-001", "2025/05/12 10:00", "トレイ2で紙が詰まる", "給紙ローラーを交換。", "給紙ローラーの摩耗。", "給紙ローラー摩耗"),
       ("OLD-002", "2025/06/03 14:20", "印刷が薄い", "トナーを交換して解消。", "トナー残量の低下。", "トナー"),
       ("OLD-003", "2025/07/22 09:40", "スキャンしたメールが届かない", "SMTPの設定を直して解消。", "SMTP認証の設定。", "SMTP")]
HEADER = ["受付番号", "受付日時", "顧客名", "製品", "件名", "問い合わせ内容", "エスカレーション先", "解決策", "原因", "原因分類"]


def _csv(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("cp932")


def _new_cases(today: str) -> list[list[str]]:
    return [
        ["ESC-101", f"{today} 15:10", "株式会社青葉物流", "MX-3100", "社員証でログインできない",
         "社員証をカードリーダーにかざしても複合機にログインできない。ピッという音もしない。", "複合機技術課",
         "カードリーダーのUSBケーブルを本体背面のポートに挿し直して復旧した。前面のUSBポートは抜けやすいので使わないよう案内した。",
         "清掃の際にカードリーダーのUSBケーブルが半抜けになっていた。", "カードリーダー接続"],
        ["ESC-102", f"{today} 16:40", "みなと法律事務所", "MX-3100", "ICカードで認証できない",
         "新しい社員証をかざすと音はするが複合機にログインできない。古い社員証ではログインできる。", "複合機技術課",
         "管理者設定でカード認証の方式を FeliCa と MIFARE の両方に変更して解決した。",
         "新しい社員証が MIFARE 方式で、複合機が FeliCa だけを読む設定だった。", "カード方式設定"],
        ["ESC-103", f"{today} 17:05", "学校法人 青空学園", "MX-5100", "社員証をかざしても反応しない",
         "職員室の複合機で、社員証をかざしてもログインできない。カードリーダーのランプが消えている。", "複合機技術課",
         "カードリーダーのUSBケーブルを本体背面のポートに挿し直して復旧した。",
         "清掃の際にカードリーダーのUSBケーブルが半抜けになっていた。", "カードリーダー接続"],
    ]


@pytest.fixture(scope="module")
def desk(make_home, model_dir, tmp_path_factory):
    """A small desk with a sources file listing its exports, manuals and the knowledge folder; a
    real `hikitsugi serve` over it; an agent's and a lead's key."""
    home = make_home("drafts-e2e")
    corpus = tmp_path_factory.mktemp("drafts-corpus")
    (corpus / "manuals").mkdir()
    (corpus / "manuals" / "mx3100_guide.md").write_text(MANUAL, encoding="utf-8")
    (corpus / "exports").mkdir()
    (corpus / "exports" / "history.csv").write_bytes(_csv([[i, d, "株式会社テスト", "MX-3100", s, s + "。", "なし", r, c, g]
                                                           for i, d, s, r, c, g in OLD]))
    knowledge = home / "knowledge"
    (home / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"path": str(corpus / "manuals")}, {"path": str(corpus / "exports")},
        {"path": str(knowledge), "kind": "manual"}]}, allow_unicode=True), encoding="utf-8")
    knowledge.mkdir()
    r = run_cli("reindex", env_home=home, model=model_dir)
    assert r.returncode == 0, r.stderr
    keys = {}
    for user, role in (("sato", "agent"), ("yamaguchi", "lead")):
        r = run_cli("keys", "create", "--user", user, "--role", role, env_home=home, model=model_dir)
        assert r.returncode == 0, r.stderr
        keys[role] = r.stdout.strip().split()[-1]
    port = free_port()
    env = {**os.environ, "HIKITSUGI_HOME": str(home), "HIKITSUGI_MODEL": str(model_dir)}
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hikitsugi", "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        assert proc.poll() is None, (home / "server.log").read_text()
    yield {"home": home, "corpus": corpus, "knowledge": knowledge, "base": base, "keys": keys}
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _client(desk, role: str) -> httpx.Client:
    return httpx.Client(base_url=desk["base"], headers={"X-API-Key": desk["keys"][role]}, timeout=120)


def test_unanswered_questions_become_an_accepted_article(desk, model_dir, chromium):  # noqa: F811
    home, base = desk["home"], desk["base"]
    # 1. agents ask four ways; nothing confident comes back, and the log says so
    with _client(desk, "agent") as agent:
        for q in QUERIES:
            g = agent.post("/search", json={"query": q, "k": 5}).json()["guidance"]
            assert g["action"] == "escalate", (q, g)
    # 2. second line resolves such escalations; the export arrives with the nightly re-index
    today = dt.date.today().strftime("%Y/%m/%d")
    (desk["corpus"] / "exports" / "escalations_new.csv").write_bytes(_csv(_new_cases(today)))
    r = run_cli("reindex", "--wait", env_home=home, model=model_dir)
    assert r.returncode == 0, r.stderr
    # 3. the lead's draft for that gap: title from the central query, the phrasings, and
    #    symptoms / cause / fix from those cases, each sentence with its source
    with _client(desk, "lead") as lead:
        assert _client(desk, "agent").get("/drafts").status_code == 403
        items = lead.get("/drafts").json()["items"]
        draft = next(d for d in items if {q["text"] for q in d["queries"]} & set(QUERIES))
        asked = {q["text"] for q in draft["queries"]}
        assert draft["title"] in QUERIES and len(asked) >= 3, draft["queries"]
        assert {c["id"] for c in draft["cases"]} >= {"ESC-101", "ESC-102"}, draft["cases"]
        assert draft["symptoms"] and draft["causes"] and draft["resolutions"]
        case_text = {c[0]: " ".join(c[5:9]) for c in _new_cases(today)}
        for section in ("symptoms", "causes", "resolutions"):
            for line in draft[section]:  # nothing invented: each sentence is in the case it cites
                assert line["sources"] and all(s["type"] == "case" for s in line["sources"])
                assert any(line["text"].rstrip("。") in case_text.get(s["id"], "") for s in line["sources"]), line
        for line in draft["queries"]:
            assert line["text"] in QUERIES and line["sources"][0]["type"] == "query"
        md = draft["markdown"]
        assert md.startswith(f"# {draft['title']}") and "## 対処" in md and "/documents/ESC-101" in md
        assert "カードリーダーのUSBケーブルを本体背面のポートに挿し直して復旧した。" in md
        # 4. how the lead page renders it (the screenshot for the docs)
        _photograph(chromium, base, desk["keys"]["lead"], draft["id"])
        # 5. accepted into the knowledge folder the sources file lists (audited)
        r = lead.post(f"/drafts/{draft['id']}/accept", json={"ingest": True})
        assert r.status_code == 200, r.text
        acc = r.json()
        assert Path(acc["path"]).parent == desk["knowledge"] and acc["sources_listed"] is True
        assert Path(acc["path"]).read_text(encoding="utf-8") == md
    r = run_cli("audit", "--action", "draft.accept", "--json", env_home=home, model=model_dir)
    assert r.returncode == 0 and draft["id"] in r.stdout, (r.stdout, r.stderr)
    # 6. the nightly re-index keeps it, and the same questions now find it in their top 3
    r = run_cli("reindex", "--wait", env_home=home, model=model_dir)
    assert r.returncode == 0, r.stderr
    name = Path(acc["path"]).name
    with _client(desk, "agent") as agent:
        for q in asked:
            top = agent.post("/search", json={"query": q, "k": 3}).json()["results"]
            assert any(c["kind"] == "manual" and c["source_path"] == name for c in top), (q, [c["source_id"] for c in top])


def _photograph(chromium, base: str, key: str, draft_id: str) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    out = REPO / "tests" / "artifacts" / "draft-article.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
        page.add_init_script(f"sessionStorage.setItem('hikitsugi-cred', {key!r});"
                             "sessionStorage.setItem('hikitsugi-cred-kind', 'key');")
        page.goto(f"{base}/leads/knowledge?draft={draft_id}")
        art = page.locator("article.draft")
        art.wait_for(timeout=60000)
        assert page.locator("article.draft h3", has_text="対処").count() == 1
        assert page.locator("article.draft a.src", has_text="ESC-101").count() >= 1
        art.screenshot(path=str(out))
        browser.close()
    if os.environ.get("HIKITSUGI_DOC_IMAGES"):
        dest = REPO / "docs" / "images" / "draft-article.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, dest)
