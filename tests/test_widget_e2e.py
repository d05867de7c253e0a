"""The embeddable search box in a real browser: Debian's Chromium, headless, driven by
Playwright, against a real `hikitsugi serve` (the ``server`` fixture) on loopback.

The box is embedded in a plain host page served by a tiny ``http.server`` on another
loopback port — so every call the widget makes is cross-origin (CORS preflight
included) — and that page carries deliberately hostile CSS. Japanese input goes through
Chromium's own IME pipeline (CDP ``Input.imeSetComposition`` / ``Input.insertText``:
real compositionstart/update/end and ``isComposing`` input events, and a real Enter
keydown with keyCode 229 while the composition is open), plus synthetic composition
events for the Safari ordering (compositionend *before* the Enter keydown).

Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from conftest import REPO, SAMPLES

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "tests" / "artifacts"
DEBOUNCE_MS = 600
QUERY = "紙が何度も詰まる"

HOSTILE_CSS = """
  * { font-family: "Courier New", monospace !important; color: rgb(255, 0, 0) !important; letter-spacing: 3px; }
  html { font-size: 30px; } body { font-size: 30px; line-height: 3; background: #eeeeee; }
  button { background: rgb(0, 255, 0) !important; border-radius: 0 !important; }
  input { border: 9px solid magenta !important; }
  .card { border: 7px dashed rgb(0, 0, 255); padding: 40px; }
  li { list-style: square; margin: 30px; } mark { background: black; }
  div { text-transform: uppercase; }
"""


def _apt_install(*packages: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", *packages]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:  # package lists may be missing on a fresh image
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=600)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    return r



def _wait_js(pg, expression: str, timeout_s: float = 30.0) -> None:
    """Wait until ``expression`` is true on one of our own pages. Playwright's
    ``wait_for_function`` compiles its predicate with eval, which the pages' CSP forbids
    (as it should); ``evaluate`` goes through the debugger protocol and is not affected."""
    deadline = time.monotonic() + timeout_s
    while not pg.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        time.sleep(0.05)

@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing and we are root."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package)")
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.skip("Chromium is not installed at /usr/bin/chromium and we are not root to "
                        "`apt-get install chromium`")
        r = _apt_install("chromium")
        if r.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(f"apt-get install chromium failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    if os.geteuid() == 0:  # a Japanese font, so the screenshots show text rather than boxes (optional)
        fc = subprocess.run(["fc-list", ":lang=ja"], capture_output=True, text=True)
        if not fc.stdout.strip():
            _apt_install("--no-install-recommends", "fonts-ipafont-gothic")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROME_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def host_page(server, api_keys, host_page_origin, tmp_path_factory) -> str:
    """A plain support-tool page embedding the box, served from another loopback port;
    the box carries the key of 森 (an agent in charge of C001 株式会社青葉物流)."""
    root = tmp_path_factory.mktemp("host-page")
    (root / "index.html").write_text(f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>サポートツール（ホストページ）</title>
<style>{HOSTILE_CSS}</style></head>
<body>
  <h1 id="host-title">サポートツール</h1>
  <div class="card" id="host-card">ホスト側のカード</div>
  <button id="host-button" type="button">ホストのボタン</button>
  <script src="{server}/widget.js"></script>
  <hikitsugi-search id="box" api-base="{server}" customer-id="C001" debounce="{DEBOUNCE_MS}"
                    api-key="{api_keys['agent']}"></hikitsugi-search>
  <script>
    window.opened = [];
    window.feedbackEvents = [];
    document.addEventListener("hikitsugi-open", (e) => {{ e.preventDefault(); window.opened.push(e.detail); }});
    document.addEventListener("hikitsugi-feedback", (e) => window.feedbackEvents.push(e.detail));
  </script>
</body></html>""", encoding="utf-8")
    (root / "favicon.ico").write_bytes(b"")
    port = urlparse(host_page_origin).port
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"{host_page_origin}/index.html"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture()
def page(browser, host_page):
    context = browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 1400})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(host_page)
    pg.wait_for_function("customElements.get('hikitsugi-search') !== undefined")
    yield pg
    context.close()
    assert not errors, errors


def _searches(pg) -> list[tuple[float, dict]]:
    """Start collecting the widget's POST /search requests as (monotonic time, body)."""
    seen: list[tuple[float, dict]] = []

    def on_request(req) -> None:
        if req.method == "POST" and req.url.endswith("/search"):
            seen.append((time.monotonic(), json.loads(req.post_data or "{}")))

    pg.on("request", on_request)
    return seen


def _shadow(pg, js: str):
    """Evaluate ``js`` with ``root`` bound to the box's shadow root."""
    return pg.evaluate(f"() => {{ const root = document.getElementById('box').shadowRoot; return ({js}); }}")


def _screenshot(pg, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    pg.screenshot(path=str(path), full_page=True)
    return path


def _db_session(sample_home: Path):
    from hikitsugi.storage.database import session_for

    return session_for(f"sqlite:///{sample_home / 'hikitsugi.db'}")


def test_ime_typing_searches_only_after_composition(page):
    """Real IME composition: no search while the word is being converted, Enter that
    confirms the conversion does not submit, and the debounced search fires after it."""
    searches = _searches(page)
    box = page.locator("#box input.q")
    box.focus()
    cdp = page.context.new_cdp_session(page)
    for text in ["か", "かみ", "紙", "紙が", "紙がなんど", "紙が何度も", "紙が何度もつまる", QUERY]:
        cdp.send("Input.imeSetComposition", {"text": text, "selectionStart": len(text), "selectionEnd": len(text)})
        page.wait_for_timeout(150)
    page.wait_for_timeout(DEBOUNCE_MS + 500)  # far longer than the debounce: still composing
    assert searches == [], "a search fired while the IME composition was open"
    assert _shadow(page, "root.getElementById('q').value") == QUERY

    # the Enter that confirms the conversion: a real keydown, isComposing=true, keyCode 229
    cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Enter", "code": "Enter",
                                        "windowsVirtualKeyCode": 229, "nativeVirtualKeyCode": 229})
    cdp.send("Input.insertText", {"text": QUERY})  # commits: compositionend
    committed = time.monotonic()
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13})
    page.wait_for_timeout(DEBOUNCE_MS // 3)
    assert searches == [], "the Enter that confirmed the conversion submitted a search"

    page.wait_for_selector("#box li.card", timeout=60_000)
    assert len(searches) == 1, searches
    t, body = searches[0]
    assert body["query"] == QUERY and body["customer"] == "C001"
    assert t - committed >= (DEBOUNCE_MS - 150) / 1000, "search was not debounced after compositionend"

    # what the box shows: the 紙詰まり case, highlighted passage, resolution, date, source link
    cards = _shadow(page, """[...root.querySelectorAll('li.card')].map(c => ({
        id: c.dataset.sourceId, title: c.querySelector('a.title').textContent,
        href: c.querySelector('a.title').href, marks: c.querySelectorAll('.snippet mark').length,
        resolution: (c.querySelector('.resolution') || {}).textContent || '',
        meta: c.querySelector('.meta').textContent }))""")
    ids = [c["id"] for c in cards]
    assert "INC-24-0007" in ids[:3], ids
    jam = cards[ids.index("INC-24-0007")]
    assert jam["marks"] > 0 and "解決策" in jam["resolution"] and "受付 20" in jam["meta"]
    assert jam["href"].endswith("/documents/INC-24-0007") and jam["href"].startswith("http://127.0.0.1:")
    # the pinned customer and the guidance banner
    pinned = _shadow(page, "root.getElementById('customer').textContent")
    assert "株式会社青葉物流" in pinned and "30分以内" in pinned
    banner = _shadow(page, "root.getElementById('guidance').textContent")
    assert ("エスカレーション" in banner or "自己解決" in banner) and "理由" in banner
    print("screenshot:", _screenshot(page, "widget-ime-results.png"))


def test_safari_order_and_escape_during_composition(page):
    """compositionend *then* keydown Enter (keyCode 229, isComposing false) must not
    submit; Esc inside a composition belongs to the IME; a plain Enter searches."""
    searches = _searches(page)
    page.locator("#box input.q").focus()
    page.evaluate("""() => {
        const i = document.getElementById('box').shadowRoot.getElementById('q');
        i.dispatchEvent(new CompositionEvent('compositionstart', {data: '', bubbles: true}));
        for (const t of ['とな', 'トナー', 'トナーがもれる']) {
          i.dispatchEvent(new CompositionEvent('compositionupdate', {data: t, bubbles: true}));
          i.value = t;
          i.dispatchEvent(new InputEvent('input', {data: t, isComposing: true, inputType: 'insertCompositionText', bubbles: true}));
        }
        i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', code: 'Escape', keyCode: 229, isComposing: true, bubbles: true, cancelable: true}));
        i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 229, isComposing: true, bubbles: true, cancelable: true}));
    }""")
    page.wait_for_timeout(DEBOUNCE_MS + 400)
    assert searches == []
    assert _shadow(page, "root.getElementById('q').value") == "トナーがもれる", "Esc during composition cleared"
    page.evaluate("""() => {
        const i = document.getElementById('box').shadowRoot.getElementById('q');
        i.value = 'トナーが漏れる';
        i.dispatchEvent(new CompositionEvent('compositionend', {data: 'トナーが漏れる', bubbles: true}));
        // Safari: the confirming Enter arrives after compositionend, not composing, keyCode 229
        i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 229, isComposing: false, bubbles: true, cancelable: true}));
    }""")
    page.wait_for_timeout(DEBOUNCE_MS // 3)
    assert searches == [], "Enter confirming a conversion (Safari order) submitted"
    page.wait_for_selector("#box li.card", timeout=60_000)
    assert [b["query"] for _, b in searches] == ["トナーが漏れる"]

    page.wait_for_timeout(400)
    page.keyboard.press("Enter")  # a plain Enter with no card selected: search now
    deadline = time.monotonic() + 30
    while len(searches) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(searches) == 2


def test_keyboard_only_and_accessibility(page):
    """Label, combobox/listbox roles, arrows move through results, Enter opens one,
    Esc clears, and Tab follows the visual order."""
    combo = page.get_by_role("combobox", name="お客様の問題（引き継ぎナレッジ検索）")
    assert combo.count() == 1
    assert page.get_by_role("listbox", name="検索結果").count() == 1
    combo.focus()
    page.keyboard.insert_text(QUERY)  # no IME: input events, then the debounced search
    page.wait_for_selector("#box li.card", timeout=60_000)
    n = _shadow(page, "root.querySelectorAll('li.card').length")
    assert n >= 3
    assert _shadow(page, "root.getElementById('q').getAttribute('aria-expanded')") == "true"

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert _shadow(page, "root.getElementById('q').getAttribute('aria-activedescendant')") == "r-1"
    assert _shadow(page, "root.getElementById('r-1').getAttribute('aria-selected')") == "true"
    page.keyboard.press("ArrowUp")
    active = _shadow(page, "root.getElementById('q').getAttribute('aria-activedescendant')")
    assert active == "r-0"
    assert _shadow(page, "root.activeElement && root.activeElement.id") == "q", "focus left the input"
    print("screenshot:", _screenshot(page, "widget-keyboard.png"))

    first_id = _shadow(page, "root.getElementById('r-0').dataset.sourceId")
    page.keyboard.press("Enter")
    opened = page.evaluate("window.opened")
    assert [o["result"]["source_id"] for o in opened] == [first_id]
    assert opened[0]["url"].endswith("/documents/" + first_id)

    # focus order: input → 検索 → エスカレーションする → the link of the pinned commitment's conflict
    # notice (C001's 30-minute promise was changed by a newer note; 森 is in charge and sees it)
    # → first card's link → 解決した → 役に立たなかった
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(_shadow(page, "(e => e.id || e.dataset.outcome || e.className)(root.activeElement)"))
    assert order == ["go", "escalate", "conflict-link", "r-0-title", "resolved", "not_helpful"], order

    combo.focus()
    page.keyboard.press("Escape")
    assert _shadow(page, "root.getElementById('q').value") == ""
    assert _shadow(page, "root.querySelectorAll('li.card').length") == 0
    assert _shadow(page, "root.getElementById('q').getAttribute('aria-expanded')") == "false"


def test_feedback_is_recorded_with_query_results_and_user(page, sample_home):
    from hikitsugi.insights.feedback import Feedback
    from hikitsugi.insights.searchlog import SearchLog

    page.locator("#box input.q").focus()
    with page.expect_response(lambda r: r.url.endswith("/search") and r.request.method == "POST") as resp_info:
        page.keyboard.insert_text(QUERY)
    data = resp_info.value.json()
    search_id = data["search_id"]
    shown = [r["source_id"] for r in data["results"]]
    page.wait_for_selector("#box li.card")

    card = page.locator("#box li.card[data-source-id='INC-24-0007']")
    with page.expect_response(lambda r: r.url.endswith("/feedback")) as fb:
        card.get_by_role("button", name="解決した").click()
    assert fb.value.status == 201
    page.wait_for_function("document.getElementById('box').shadowRoot.getElementById('status')"
                           ".textContent.includes('記録しました')")
    assert card.get_by_role("button", name="解決した").get_attribute("aria-pressed") == "true"
    with page.expect_response(lambda r: r.url.endswith("/feedback")):
        page.locator("#box").get_by_role("button", name="エスカレーションする").click()
    print("screenshot:", _screenshot(page, "widget-feedback.png"))
    assert len(page.evaluate("window.feedbackEvents")) == 2

    session = _db_session(sample_home)
    try:
        rows = session.query(Feedback).filter(Feedback.search_id == search_id).order_by(Feedback.id).all()
        logged = session.query(SearchLog).filter(SearchLog.search_id == search_id).one()
    finally:
        session.close()
    assert [(r.outcome, r.source_id) for r in rows] == [("resolved", "INC-24-0007"), ("escalated", None)]
    for r in rows:
        assert r.query == QUERY and r.result_ids == shown and r.customer == "C001" and r.user == "mori"
    assert logged.query == QUERY and logged.result_ids == shown and logged.customer == "C001"


def test_host_css_does_not_leak_in_or_out(page):
    page.locator("#box input.q").focus()
    page.keyboard.insert_text(QUERY)
    page.wait_for_selector("#box li.card", timeout=60_000)
    inside = _shadow(page, """(() => {
        const cs = (el) => getComputedStyle(el);
        const card = root.querySelector('li.card'), title = card.querySelector('a.title');
        const btn = card.querySelector('button'), input = root.getElementById('q');
        const mark = root.querySelector('.snippet mark'), box = root.querySelector('.hk');
        return { font: cs(box).fontFamily, color: cs(title).color, boxFontSize: cs(box).fontSize,
                 spacing: cs(box).letterSpacing, btnBg: cs(btn).backgroundColor, inputBorder: cs(input).borderTopWidth,
                 cardBorder: cs(card).borderTopStyle, cardMargin: cs(card).marginLeft, listStyle: cs(card).listStyleType,
                 markBg: mark ? cs(mark).backgroundColor : null, transform: cs(card.querySelector('.meta')).textTransform };
    })()""")
    assert "Courier" not in inside["font"] and "Noto Sans JP" in inside["font"]
    assert inside["color"] != "rgb(255, 0, 0)"
    assert inside["boxFontSize"] == "14px" and inside["spacing"] == "normal"
    assert inside["btnBg"] != "rgb(0, 255, 0)" and inside["inputBorder"] == "1px"
    assert inside["cardBorder"] == "solid" and inside["cardMargin"] == "0px" and inside["listStyle"] == "none"
    assert inside["markBg"] not in (None, "rgb(0, 0, 0)") and inside["transform"] == "none"
    # and the widget's own styles (.card, button, input …) stay inside: the host is untouched
    outside = page.evaluate("""(() => {
        const cs = (id) => getComputedStyle(document.getElementById(id));
        return { card: cs('host-card').borderTopStyle + ' ' + cs('host-card').borderTopWidth,
                 button: cs('host-button').backgroundColor, title: cs('host-title').color,
                 lightCards: document.querySelectorAll('li.card').length };
    })()""")
    assert outside == {"card": "dashed 7px", "button": "rgb(0, 255, 0)", "title": "rgb(255, 0, 0)", "lightCards": 0}
    print("screenshot:", _screenshot(page, "widget-host-css.png"))


def test_lead_page_shows_reports(browser, server, api, api_keys):
    """The lead page asks for a key, refuses an agent's, and renders every report for a lead's."""
    sid = api.post("/search", json={"query": "食堂のメニューを教えて", "k": 3}).json()["search_id"]
    for _ in range(50):  # the search log is written right after the response
        r = api.post("/feedback", json={"outcome": "not_helpful", "search_id": sid})
        if r.status_code == 201:
            break
        time.sleep(0.1)
    assert r.status_code == 201, r.text
    context = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 1400})
    pg = context.new_page()
    try:
        pg.goto(server + "/leads")
        pg.wait_for_selector("#auth-panel:not([hidden])")
        assert "キーが必要です" in pg.locator("#status").inner_text()
        pg.get_by_label("キー", exact=True).fill(api_keys["agent"])
        pg.get_by_role("button", name="表示").click()
        _wait_js(pg, "document.getElementById('status').textContent.includes('専用です')")
        pg.get_by_label("キー", exact=True).fill(api_keys["lead"])
        pg.get_by_role("button", name="表示").click()
        pg.wait_for_selector("#report:not([hidden])", timeout=120_000)
        assert pg.locator("#auth-panel").is_hidden()
        text = pg.locator("#report").inner_text()
        for heading in ("自己解決率", "次に書くべき記事", "よく検索される質問", "期限が近い特別対応",
                        "一度も検索結果に出ていない文書", "長期間更新されていない文書"):
            assert heading in text
        assert pg.locator("#kpi-rate").inner_text().endswith("%")
        today = dt.date.today()
        expected = {c["name"] for c in yaml.safe_load((SAMPLES / "customers" / "customers.yaml").read_text("utf-8"))
                    for m in c.get("commitments") or []
                    if m.get("valid_until") and today <= dt.date.fromisoformat(str(m["valid_until"]))
                    <= today + dt.timedelta(days=30)}
        exp_text = pg.locator("#expiring").inner_text()
        for name in expected:
            assert name in exp_text
        print("screenshot:", _screenshot(pg, "leads-page.png"))
    finally:
        context.close()


def test_search_page_takes_a_token_from_the_fragment_under_its_csp(browser, server, api_keys, sample_home):
    """The host tool opens /#token=…: the page keeps the token for the tab, takes it out of
    the address bar, searches with it, and runs under its Content-Security-Policy without
    a violation. The token never appears in the server's log (a fragment is not sent)."""
    import httpx

    token = httpx.post(server + "/auth/token", json={"user": "mori"}, headers={"X-API-Key": api_keys["admin"]},
                       timeout=30).json()["token"]
    context = browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 1200})
    pg = context.new_page()
    console: list[str] = []
    pg.on("console", lambda m: console.append(m.text))
    try:
        pg.goto(f"{server}/#token={token}")
        _wait_js(pg, "customElements.get('hikitsugi-search') !== undefined && !location.hash")
        assert token not in pg.url and pg.evaluate("sessionStorage.getItem('hikitsugi-cred')") == token
        with pg.expect_response(lambda r: r.url.endswith("/search")) as resp:
            _shadow(pg, "root.getElementById('q').focus()")
            pg.keyboard.insert_text(QUERY)
            pg.keyboard.press("Enter")
        assert resp.value.status == 200 and resp.value.request.headers.get("authorization") == f"Bearer {token}"
    finally:
        context.close()
    assert not [m for m in console if "Content Security Policy" in m], console
    time.sleep(0.3)
    assert token not in (sample_home / "server.log").read_text()


@pytest.fixture(scope="module")
def leads_server(make_home, model_dir):
    """A small desk served in this process: customer C801 with a commitment ending in ten
    days (its reason is private) and an interaction note; a lead in charge of C801 and a
    lead in charge of nothing."""
    import uvicorn

    from hikitsugi.access.principals import assign, create_key
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for

    from conftest import free_port

    home = make_home("leads-page-home")
    src = home / "src"
    src.mkdir()
    until = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    (src / "customers.yaml").write_text(yaml.safe_dump([{
        "id": "C801", "name": "株式会社ページ物産", "rank": "A", "owner": "森 沙織",
        "commitments": [{"what": "年末は代替機を常設", "reason": "繁忙期の停止を避けるための社長合意",
                         "approved_by": "山口 和彦（部長）", "valid_until": until}]}], allow_unicode=True),
        encoding="utf-8")
    (src / "notes.jsonl").write_text(json.dumps({"記録ID": "NOTE-8001", "顧客名": "株式会社ページ物産",
                                                 "内容": "倉庫の鍵は守衛室で預かってもらう取り決め"},
                                                ensure_ascii=False) + "\n", encoding="utf-8")
    assert ingest_paths([src], get_settings()).files_failed == 0
    session = session_for(get_settings().db_url)
    try:
        keys = {"in_charge": create_key(session, "page_lead", "lead", "e2e")[1],
                "other": create_key(session, "page_lead2", "lead", "e2e")[1]}
        assign(session, "page_lead", "C801", by="e2e")
    finally:
        session.close()
    from hikitsugi.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", keys, home
    server.should_exit = True
    thread.join(timeout=10)


def test_lead_page_shows_private_parts_only_to_leads_in_charge(browser, leads_server, model_dir):
    base, keys, home = leads_server
    os.environ["HIKITSUGI_HOME"], os.environ["HIKITSUGI_MODEL"] = str(home), str(model_dir)
    seen = {}
    for who in ("in_charge", "other"):
        context = browser.new_context(locale="ja-JP", viewport={"width": 1200, "height": 1400})
        pg = context.new_page()
        try:
            pg.goto(base + "/leads")
            pg.wait_for_selector("#auth-panel:not([hidden])")
            pg.get_by_label("キー", exact=True).fill(keys[who])
            pg.get_by_role("button", name="表示").click()
            pg.wait_for_selector("#report:not([hidden])", timeout=120_000)
            seen[who] = pg.locator("#report").text_content()
            print("screenshot:", _screenshot(pg, f"leads-page-{who}.png"))
        finally:
            context.close()
    assert "年末は代替機を常設" in seen["in_charge"] and "年末は代替機を常設" in seen["other"]  # what: basic
    assert "社長合意" in seen["in_charge"] and "山口 和彦" in seen["in_charge"] and "NOTE-8001" in seen["in_charge"]
    assert "社長合意" not in seen["other"] and "山口 和彦" not in seen["other"] and "NOTE-8001" not in seen["other"]
    assert "担当者のみ表示" in seen["other"]
