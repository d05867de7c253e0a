"""Personal data masking, table-driven: every Japanese way of writing a phone number, an
e-mail address, a postal address or a person's name in the table below is masked

* by ``access.masking.mask`` itself,
* in search snippets and passages (a case holding the form, searched by an agent who is
  not in charge of that customer),
* in ``GET /documents/{id}`` for the same agent,
* in the server's logs (as a log argument and inside a URL-encoded request line), and
* in the search log (the form typed into a query), which the lead reports read —

while an admin sees the same documents unmasked (so each row really is in the data).
Names "without an honorific" are the people the customer records know: the emergency
contacts (石原 修, 川口 由美) and people a record names with one (杉浦先生 → 杉浦).
"""

from __future__ import annotations

import csv
import logging
import unicodedata
from urllib.parse import quote

import pytest
import yaml

pytestmark = pytest.mark.slow

# (what the case text says, strings that must not survive masking)
FORMS: list[tuple[str, list[str]]] = [
    # phones: separators, widths, digits
    ("携帯は090-1234-5678です", ["1234-5678", "5678"]),
    ("携帯は09012345678です", ["09012345678", "5678"]),
    ("携帯は090 1234 5678です", ["1234 5678", "5678"]),
    ("携帯は090.1234.5678です", ["1234.5678", "5678"]),
    ("携帯は０９０－１２３４－５６７８です", ["５６７８", "5678"]),
    ("携帯は０９０１２３４５６７８です", ["５６７８", "5678"]),
    ("携帯は090ー1234ー5678です", ["1234ー5678", "5678"]),
    ("携帯は090−1234−5678です", ["1234−5678", "5678"]),
    ("携帯は〇九〇-一二三四-五六七八です", ["五六七八", "一二三四"]),
    ("携帯は〇九〇一二三四五六七八です", ["五六七八"]),
    ("携帯は090・1234・5678です", ["5678"]),
    ("携帯は090 - 1234 - 5678です", ["5678"]),
    ("会社は03-1234-5678です", ["1234-5678", "5678"]),
    ("会社は(03)1234-5678です", ["5678"]),
    ("会社は03(1234)5678です", ["5678"]),
    ("会社は（０３）１２３４－５６７８です", ["５６７８", "5678"]),
    ("会社は0312345678です", ["0312345678", "5678"]),
    ("横浜は045-123-4567です", ["4567"]),
    ("藤沢は0466-12-3456です", ["3456"]),
    ("本別は01567-2-3456です", ["3456"]),
    ("窓口は0120-123-456です", ["0120-123-456", "123-456"]),
    ("窓口は0120123456です", ["0120123456"]),
    ("窓口は0570-000-123です", ["000-123"]),
    ("窓口は0800-123-4567です", ["4567"]),
    ("IP電話は050-1234-5678です", ["5678"]),
    ("国際は+81-90-1234-5678です", ["5678"]),
    ("国際は+81 90 1234 5678です", ["5678"]),
    ("国際は+81(0)90-1234-5678です", ["5678"]),
    ("国際は＋８１－９０－１２３４－５６７８です", ["５６７８", "5678"]),
    # phones right after dates and times
    ("11/05 090-0000-1234 から着信", ["0000-1234", "1234"]),
    ("10:05 090-0000-1234 から着信", ["0000-1234", "1234"]),
    ("2026/11/05 09011112222 から着信", ["09011112222", "2222"]),
    ("2026-11-05 10:05 080-2222-3333 から着信", ["2222-3333", "3333"]),
    ("11月5日 090-1111-2222 から着信", ["1111-2222", "2222"]),
    ("午前10時05分 03-1111-2222 から着信", ["1111-2222", "2222"]),
    ("2026.11.05 090-3333-4444 から着信", ["3333-4444", "4444"]),
    # phones with labels
    ("TEL:03-3333-4444/FAX:03-3333-4445", ["4444", "4445"]),
    ("電話番号：090-4444-5555", ["5555"]),
    ("携帯090-5555-6666まで折り返し", ["6666"]),
    ("070-6666-7777（夜間）に連絡", ["7777"]),
    # e-mail addresses
    ("メールはishihara@aoba-logi.example.jpへ", ["ishihara", "aoba-logi.example.jp"]),
    ("メールはishihara%40aoba-logi.example.jpへ", ["ishihara", "aoba-logi"]),
    ("メールはishihara＠aoba-logi.example.jpへ", ["ishihara", "aoba-logi"]),
    ("メールはｉｓｈｉｈａｒａ＠ａｏｂａ．ｅｘａｍｐｌｅ．ｊｐへ", ["ｉｓｈｉｈａｒａ", "ishihara"]),
    ("メールはmailto:ishihara@aoba-logi.example.jpへ", ["ishihara"]),
    ("メールはIshihara.Osamu+support@aoba-logi.example.jpへ", ["Ishihara", "Osamu", "ishihara"]),
    ("メールはishihara[at]aoba-logi.example.jpへ", ["ishihara"]),
    ("メールはishihara★aoba-logi.example.jpへ", ["ishihara"]),
    ("メールはmailto%3Aishihara%40aoba-logi.example.jpへ", ["ishihara"]),
    # names with an honorific
    ("高橋様から電話", ["高橋"]),
    ("高橋さまから電話", ["高橋"]),
    ("高橋さんから電話", ["高橋"]),
    ("高橋氏から電話", ["高橋"]),
    ("高橋殿から電話", ["高橋"]),
    ("高橋くんから電話", ["高橋"]),
    ("高橋君から電話", ["高橋"]),
    ("高橋ちゃんから電話", ["高橋"]),
    ("高橋先生から電話", ["高橋"]),
    ("高橋 一郎様から電話", ["高橋", "一郎"]),
    ("高橋一郎さんから電話", ["高橋一郎"]),
    ("タカハシ様から電話", ["タカハシ"]),
    ("高橋部長様から電話", ["高橋"]),
    ("高橋センター長さんから電話", ["高橋"]),
    # known contacts (customer records), without an honorific too
    ("石原修から電話", ["石原修"]),
    ("石原 修から電話", ["石原 修"]),
    ("石原　修から電話", ["石原　修"]),
    ("石原に電話", ["石原"]),
    ("石原センター長に電話", ["石原"]),
    ("石原総支配人に電話", ["石原"]),
    ("石原さまに電話", ["石原"]),
    ("石原くんに電話", ["石原"]),
    ("川口由美から電話", ["川口由美"]),
    ("杉浦から折り返し", ["杉浦"]),
    # postal addresses
    ("送付先は〒105-0011 東京都港区芝公園1-2-3", ["105-0011", "芝公園"]),
    ("送付先は〒１０５－００１１ 港区芝公園", ["１０５－００１１", "105-0011"]),
    ("所在地は東京都港区芝公園一丁目2番3号", ["芝公園一丁目"]),
]
# Must survive: words that look like the forms but are not personal data.
KEEP = ["仕様の確認、お客様と同様に", "INC-24-0012 2024-01-15 10,000円", "担当 森様", "株式会社テスト物流様",
        "2026-01-12 09:40", "営業部長さんに確認", "ご苦労さまです", "石原産業"]

CODES = [a + b for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未申酉戌亥"]


def test_the_table_is_large_enough():
    assert len(FORMS) >= 60 and len({t for t, _ in FORMS}) == len(FORMS)


def _lexicon():
    from hikitsugi.access.masking import Lexicon

    return Lexicon(people=frozenset({"石原 修", "川口 由美", "杉浦"}),
                   keep=frozenset({"株式会社テスト物流", "テスト物流", "森 沙織", "森", "山口 和彦", "山口"}))


def _variants(secret: str) -> set[str]:
    from hikitsugi.ingest.normalize import normalize

    return {secret, unicodedata.normalize("NFKC", secret), normalize(secret)}


@pytest.mark.parametrize("text,secrets", FORMS, ids=[t for t, _ in FORMS])
def test_mask_function(text, secrets):
    from hikitsugi.access.masking import MASK, mask

    out = mask(text, _lexicon())[0]
    assert MASK in out and not [s for s in secrets for v in _variants(s) if v in out], out
    norm = unicodedata.normalize("NFKC", text)  # what ingest stores
    out = mask(norm, _lexicon())[0]
    assert MASK in out and not [s for s in secrets for v in _variants(s) if v in out], out


@pytest.mark.parametrize("text", KEEP)
def test_look_alikes_are_kept(text):
    from hikitsugi.access.masking import mask

    assert mask(text, _lexicon())[0] == text


@pytest.fixture(scope="module")
def world(make_home, model_dir):
    """A home with one customer whose records name 石原 修, 川口 由美 and 杉浦先生, and one
    case per form; keys for an admin and for an agent in charge of nothing."""
    from fastapi.testclient import TestClient

    from hikitsugi.access.principals import create_key
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for

    home = make_home("masking-home")
    src = home / "src"
    src.mkdir()
    (src / "customers.yaml").write_text(yaml.safe_dump([{
        "id": "C501", "name": "株式会社テスト物流", "aliases": ["テスト物流"], "rank": "A", "owner": "森 沙織（営業二課）",
        "commitments": [{"what": "30分以内に一次回答", "reason": "遅延のお詫び", "approved_by": "山口 和彦（部長）"}],
        "preferences": ["所長（杉浦先生）は書面を好む。実務の窓口は事務長の川口様。"],
        "emergency_contacts": [{"name": "石原 修", "role": "物流センター長", "phone": "090-0000-1234",
                                "email": "ishihara@aoba-logi.example.jp"},
                               {"name": "川口 由美", "role": "事務長", "phone": "090-0000-1301"}],
    }], allow_unicode=True), encoding="utf-8")
    with open(src / "cases.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["受付番号", "受付日時", "顧客名", "件名", "問い合わせ内容", "解決策", "対応者", "ステータス"])
        for i, (text, _) in enumerate(FORMS):
            w.writerow([f"PII-{i:03d}", "2026/01/12 09:40", "株式会社テスト物流", f"確認{CODES[i]}",
                        f"{CODES[i]}の件。{text}。", "折り返して解決。", "石田 健", "完了"])
    report = ingest_paths([src], get_settings())
    assert report.files_failed == 0, report.problems
    session = session_for(get_settings().db_url)
    try:
        keys = {role: create_key(session, role, role, "masking")[1] for role in ("admin", "agent")}
    finally:
        session.close()
    from hikitsugi.api.app import create_app

    with TestClient(create_app()) as client:
        yield client, keys, get_settings()


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [v for s in secrets for v in _variants(s) if v in text]


def test_forms_are_masked_in_snippets_documents_and_the_search_log(world):
    from hikitsugi.access.masking import MASK
    from hikitsugi.insights.searchlog import SearchLog
    from hikitsugi.storage.database import session_for

    client, keys, settings = world
    agent, admin = {"X-API-Key": keys["agent"]}, {"X-API-Key": keys["admin"]}
    failures = []
    search_ids = {}
    for i, (text, secrets) in enumerate(FORMS):
        sid = f"PII-{i:03d}"
        # the agent types the form into a query: the search log must not keep it
        r = client.post("/search", json={"query": f"{CODES[i]} {text}", "k": 5, "mode": "lexical",
                                         "filters": {"kinds": ["case"]}}, headers=agent)
        assert r.status_code == 200, r.text
        search_ids[r.json()["search_id"]] = i
        card = next((c for c in r.json()["results"] if c["source_id"] == sid), None)
        if card is None:
            failures.append(f"{sid}: not found by its code")
            continue
        shown = card["passage"] + card["snippet"] + card["title"]
        if _leaks(shown, secrets) or MASK not in card["passage"] or not card["redacted"]:
            failures.append(f"snippet {sid} {text!r}: {card['passage']!r}")
        doc = client.get(f"/documents/{sid}", headers=agent).json()
        body = " ".join(c["text"] for c in doc["chunks"]) + doc["title"]
        if _leaks(body, secrets) or not doc["redacted"]:
            failures.append(f"document {sid} {text!r}: {body!r}")
        full = " ".join(c["text"] for c in client.get(f"/documents/{sid}", headers=admin).json()["chunks"])
        if not any(v in full for v in _variants(secrets[0])):  # the admin sees it: the row is really there
            failures.append(f"admin {sid}: {secrets[0]!r} not in {full!r}")
    session = session_for(settings.db_url)
    try:
        logged = {search_ids[row.search_id]: row for row in session.query(SearchLog).filter(SearchLog.user == "agent")
                  if row.search_id in search_ids}
    finally:
        session.close()
    for i, (text, secrets) in enumerate(FORMS):
        row = logged.get(i)
        if row is None or _leaks(row.query + " " + row.normalized_query, secrets):
            failures.append(f"search log {text!r}: {row and (row.query, row.normalized_query)}")
    assert not failures, "\n".join(failures)


def test_forms_are_masked_in_logs(world, caplog):
    """As a log argument, in a message, and inside a request line (URL-encoded, as uvicorn logs it)."""
    client, keys, _ = world
    client.post("/search", json={"query": "石原", "k": 1, "mode": "lexical"}, headers={"X-API-Key": keys["agent"]})
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO):
        for text, _ in FORMS:
            logging.getLogger("hikitsugi.test").info("問い合わせ: %s", text)
            logging.getLogger("hikitsugi.test").warning(f"失敗: {text}")
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/documents/" + quote(text), "1.1", 404)
    lines = caplog.text
    failures = [text for text, secrets in FORMS
                if _leaks(lines, secrets) or any(quote(s) in lines for s in secrets if quote(s) != s)]
    assert not failures, failures
    assert lines.count("GET /documents/") == len(FORMS) and "Logging error" not in lines
