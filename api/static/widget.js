/*
 * Hikitsugi 検索ボックス — an embeddable web component, no build step.
 *
 *   <script src="https://HOST/widget.js"></script>
 *   <hikitsugi-search api-base="https://HOST" customer-id="C001" token="…"></hikitsugi-search>
 *
 * Attributes
 *   api-base     Hikitsugi server (default: where this script was loaded from)
 *   customer-id  customer in context (id or name); pins their commitments and arrangements
 *   token        sent as "Authorization: Bearer <token>"
 *   api-key      sent as "X-API-Key: <key>" (simple setups)
 *   k            result cards (default 5)
 *   debounce     ms of quiet before search-as-you-type fires (default 400)
 *   min-chars    shortest query searched while typing (default 2)
 *
 * Events (bubbling, composed): hikitsugi-results {detail: response},
 * hikitsugi-open {detail: {result, url}} (cancelable: preventDefault to show the source
 * yourself instead of a new tab), hikitsugi-feedback {detail: recorded feedback}.
 *
 * Japanese input: nothing is searched while an IME composition is open; Enter that
 * confirms a conversion (isComposing / keyCode 229) neither searches nor opens a
 * result; search-as-you-type restarts its debounce when the composition ends. Esc
 * during a composition is left to the IME.
 *
 * Styles live in a shadow root and every inherited property is set explicitly, so the
 * host page's CSS neither reaches in nor is touched. Theme on purpose with
 * --hikitsugi-accent on the element.
 */
(() => {
  "use strict";
  if (window.customElements === undefined || customElements.get("hikitsugi-search")) return;

  const SCRIPT_BASE = (() => {
    try { return new URL(document.currentScript.src, location.href).origin; } catch (_) { return location.origin; }
  })();

  const KIND = { case: "過去事例", manual: "マニュアル", note: "対応メモ", customer: "顧客カルテ" };
  const OUTCOME = { resolved: "解決した", not_helpful: "役に立たなかった", escalated: "エスカレーション" };

  const CSS = `
    :host { all: initial; display: block; contain: content; }
    :host([hidden]) { display: none; }
    .hk {
      --accent: var(--hikitsugi-accent, #1f6feb); --fg: #1d2433; --muted: #5b6475; --line: #d9dee8;
      --warn: #b42318; --ok: #067647; --bg: #ffffff;
      all: initial; display: block; box-sizing: border-box;
      font-family: "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Noto Sans JP", "Noto Sans CJK JP", "Yu Gothic", Meiryo, sans-serif;
      font-size: 14px; line-height: 1.6; font-weight: 400; font-style: normal; color: var(--fg);
      letter-spacing: normal; word-spacing: normal; text-align: left; text-transform: none; text-indent: 0;
      text-shadow: none; white-space: normal; direction: ltr; visibility: visible; cursor: auto;
      background: var(--bg); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px;
    }
    .hk *, .hk *::before, .hk *::after { box-sizing: border-box; }
    .hk button, .hk input { font-family: inherit; letter-spacing: normal; }
    .label { display: block; font-weight: 700; margin: 0 0 4px; }
    .row { display: flex; gap: 6px; align-items: stretch; flex-wrap: wrap; }
    input.q {
      flex: 1 1 260px; min-width: 0; margin: 0; font-size: 16px; padding: 8px 10px; color: var(--fg);
      background: #fff; border: 1px solid #aab3c2; border-radius: 6px; outline: none; height: auto; width: auto;
    }
    input.q:focus { border-color: var(--accent); box-shadow: 0 0 0 3px color-mix(in srgb, var(--accent) 25%, transparent); }
    button {
      margin: 0; font-size: 14px; line-height: 1.4; padding: 7px 14px; border-radius: 6px; cursor: pointer;
      border: 1px solid var(--accent); background: var(--accent); color: #fff; font-weight: 600;
      text-transform: none; letter-spacing: normal; box-shadow: none; width: auto; height: auto;
    }
    button.secondary { background: #fff; color: var(--fg); border-color: #aab3c2; font-weight: 400; }
    button.escalate { background: #fff; color: var(--warn); border-color: var(--warn); }
    button[aria-pressed="true"] { background: var(--ok); border-color: var(--ok); color: #fff; }
    button.escalate[aria-pressed="true"] { background: var(--warn); border-color: var(--warn); color: #fff; }
    button:disabled { opacity: .45; cursor: default; }
    button:focus-visible, a:focus-visible, input.q:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
    .hint { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
    .toolbar { display: flex; gap: 8px; align-items: center; margin: 8px 0 0; flex-wrap: wrap; }
    .status { color: var(--muted); font-size: 12px; min-height: 1.2em; flex: 1 1 auto; }
    .status.error { color: var(--warn); font-weight: 700; }
    .guidance { border-radius: 8px; padding: 8px 12px; margin: 10px 0 0; font-size: 13px; }
    .guidance.escalate { background: #fdecea; border: 1px solid #f4b4ae; }
    .guidance.self { background: #e8f6ee; border: 1px solid #a6dcbc; }
    .guidance strong { font-weight: 700; }
    .guidance ol { margin: 4px 0 0 1.4em; padding: 0; }
    .pinned { background: #fff8e6; border: 1px solid #f0d38a; border-radius: 8px; padding: 8px 12px; margin: 10px 0 0; }
    .pinned h3 { font-size: 13px; font-weight: 700; margin: 0 0 4px; }
    .pinned ul { margin: 0; padding: 0 0 0 1.2em; list-style: disc; }
    .pinned li { margin: 2px 0; font-size: 13px; }
    .expired { color: var(--warn); font-weight: 700; }
    ul.results { list-style: none; margin: 8px 0 0; padding: 0; }
    li.card {
      display: block; background: #fff; border: 1px solid var(--line); border-radius: 8px;
      padding: 8px 12px; margin: 8px 0 0; cursor: pointer;
    }
    li.card.active { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent); }
    .card .head { font-weight: 700; font-size: 14px; }
    .card a.title { color: var(--fg); text-decoration: none; }
    .card a.title:hover { text-decoration: underline; }
    .kind { display: inline-block; font-size: 11px; font-weight: 400; padding: 0 6px; border-radius: 10px; background: #eef2f8; margin-right: 6px; }
    .meta { color: var(--muted); font-size: 12px; }
    .snippet { margin: 4px 0; white-space: pre-wrap; word-break: break-word; }
    mark { background: #fff3a3; color: inherit; padding: 0 1px; font-weight: inherit; }
    .resolution { border-left: 3px solid var(--ok); padding-left: 8px; margin: 4px 0 0; font-size: 13px; }
    .resolution b { color: var(--ok); font-weight: 700; }
    .fb { display: flex; gap: 6px; margin: 6px 0 0; }
    .fb button { font-size: 12px; padding: 3px 10px; }
    .empty { color: var(--muted); margin: 8px 0 0; }
    .conflict { background: #fff4e5; border: 1px solid #f5b971; border-left: 4px solid #dc6803; border-radius: 6px;
      padding: 4px 8px; margin: 4px 0; font-size: 13px; }
    .conflict strong { color: #b54708; font-weight: 700; }
    .conflict a { color: var(--accent); }
    .sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); border: 0; white-space: nowrap; }
  `;

  const HTML = `
    <div class="hk" part="box">
      <div role="search" aria-label="引き継ぎナレッジ検索">
        <label class="label" for="q">お客様の問題（引き継ぎナレッジ検索）</label>
        <div class="row">
          <input id="q" class="q" type="text" role="combobox" aria-autocomplete="list" aria-expanded="false"
                 aria-controls="results" aria-describedby="hint" autocomplete="off" autocapitalize="off"
                 spellcheck="false" enterkeyhint="search" placeholder="例: 紙が何度も詰まる">
          <button id="go" type="button">検索</button>
        </div>
        <p id="hint" class="hint">入力すると自動で検索します。↑↓で結果を選び、Enterで開きます。Escでクリア。</p>
      </div>
      <div class="toolbar">
        <div id="status" class="status" role="status" aria-live="polite"></div>
        <button id="escalate" class="escalate" type="button" aria-pressed="false" disabled
                aria-describedby="escalate-desc">エスカレーションする</button>
        <span id="escalate-desc" class="sr-only">この検索では解決できず、二次対応へ引き継いだことを記録します</span>
      </div>
      <div id="guidance"></div>
      <section id="customer" aria-label="顧客情報" hidden></section>
      <ul id="results" class="results" role="listbox" aria-label="検索結果"></ul>
    </div>`;

  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  };

  /* The server's snippet is HTML-escaped text with <mark>; keep exactly that and nothing else. */
  const snippetNodes = (html) => {
    const tpl = document.createElement("template");
    tpl.innerHTML = String(html || "");
    const out = [];
    for (const n of tpl.content.childNodes) {
      if (n.nodeType === Node.ELEMENT_NODE && n.nodeName === "MARK") out.push(el("mark", { text: n.textContent }));
      else out.push(document.createTextNode(n.textContent));
    }
    return out;
  };

  class HikitsugiSearch extends HTMLElement {
    static get observedAttributes() { return ["customer-id"]; }

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      const style = document.createElement("style");
      style.textContent = CSS;
      const tpl = document.createElement("template");
      tpl.innerHTML = HTML;
      root.append(style, tpl.content.cloneNode(true));
      this.$ = (id) => root.getElementById(id);
      this.input = this.$("q");
      this.list = this.$("results");
      this.composing = false;
      this.imeEnterAt = -1e9;
      this.timer = null;
      this.seq = 0;
      this.controller = null;
      this.active = -1;
      this.data = null;          // last response
      this.lastQuery = "";
      this.bind();
    }

    /* ---------- attributes ---------- */
    get apiBase() { return (this.getAttribute("api-base") || SCRIPT_BASE).replace(/\/+$/, ""); }
    get k() { const n = parseInt(this.getAttribute("k") || "5", 10); return n >= 1 && n <= 100 ? n : 5; }
    get debounceMs() { const n = parseInt(this.getAttribute("debounce") || "400", 10); return n >= 0 ? n : 400; }
    get minChars() { const n = parseInt(this.getAttribute("min-chars") || "2", 10); return n >= 1 ? n : 2; }
    get customerId() { return (this.getAttribute("customer-id") || "").trim() || null; }
    get query() { return this.input.value; }
    set query(v) { this.input.value = v; }

    attributeChangedCallback(name, oldV, newV) {
      if (name === "customer-id" && oldV !== newV && this.lastQuery) this.search(true);
    }

    disconnectedCallback() { clearTimeout(this.timer); if (this.controller) this.controller.abort(); }

    headers() {
      const h = { "Content-Type": "application/json", Accept: "application/json" };
      const token = this.getAttribute("token");
      const key = this.getAttribute("api-key");
      if (token) h.Authorization = "Bearer " + token;
      if (key) h["X-API-Key"] = key;
      return h;
    }

    /* ---------- events ---------- */
    bind() {
      const input = this.input;
      input.addEventListener("compositionstart", () => { this.composing = true; clearTimeout(this.timer); });
      input.addEventListener("compositionupdate", () => { this.composing = true; clearTimeout(this.timer); });
      input.addEventListener("compositionend", () => { this.composing = false; this.schedule(); });
      input.addEventListener("input", (e) => {
        if (e.isComposing || this.composing) return;  // the word is still being converted
        this.schedule();
      });
      input.addEventListener("keydown", (e) => this.onKey(e));
      this.$("go").addEventListener("click", () => this.search(true));
      this.$("escalate").addEventListener("click", () => this.sendFeedback("escalated", null, this.$("escalate")));
      this.list.addEventListener("click", (e) => {
        const btn = e.target.closest("button[data-outcome]");
        const card = e.target.closest("li.card");
        if (!card) return;
        const i = Number(card.dataset.index);
        if (btn) { this.sendFeedback(btn.dataset.outcome, this.data.results[i].source_id, btn); return; }
        if (e.target.closest("a")) { e.preventDefault(); this.open(i); return; }
        this.setActive(i);
      });
      this.shadowRoot.addEventListener("keydown", (e) => {
        if (e.key === "Escape" && e.target !== input && !e.isComposing) { this.clear(); input.focus(); }
      });
    }

    onKey(e) {
      if (e.isComposing || e.keyCode === 229 || this.composing) {
        if (e.key === "Enter" || e.keyCode === 13 || e.keyCode === 229) this.imeEnterAt = performance.now();
        return;  // the IME owns this key (conversion, confirmation, cancel)
      }
      const n = this.data ? this.data.results.length : 0;
      switch (e.key) {
        case "ArrowDown":
          if (!n) return;
          e.preventDefault();
          this.setActive(this.active < n - 1 ? this.active + 1 : 0);
          break;
        case "ArrowUp":
          if (!n) return;
          e.preventDefault();
          this.setActive(this.active > 0 ? this.active - 1 : n - 1);
          break;
        case "Home": case "End":
          if (!n || this.active < 0) return;
          e.preventDefault();
          this.setActive(e.key === "Home" ? 0 : n - 1);
          break;
        case "Enter":
          e.preventDefault();
          if (performance.now() - this.imeEnterAt < 300) return;  // Safari: compositionend, then Enter
          if (this.active >= 0) this.open(this.active);
          else this.search(true);
          break;
        case "Escape":
          e.preventDefault();
          this.clear();
          break;
        default:
      }
    }

    schedule() {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.timer = null; this.search(false); }, this.debounceMs);
    }

    /* ---------- search ---------- */
    async search(force) {
      if (this.composing) return;
      clearTimeout(this.timer);
      const query = this.input.value.trim();
      if (!query) { if (force) this.say("検索語を入力してください。", true); else this.clear(true); return; }
      if (!force && ([...query].length < this.minChars || query === this.lastQuery)) return;
      this.lastQuery = query;
      if (this.controller) this.controller.abort();
      this.controller = new AbortController();
      const seq = ++this.seq;
      const body = { query, k: this.k };
      if (this.customerId) body.customer = this.customerId;
      this.setAttribute("aria-busy", "true");
      this.say("検索中…");
      try {
        const res = await fetch(this.apiBase + "/search", {
          method: "POST", headers: this.headers(), body: JSON.stringify(body), signal: this.controller.signal,
          credentials: "omit", mode: "cors",
        });
        const data = await res.json().catch(() => ({}));
        if (seq !== this.seq) return;
        if (!res.ok) throw new Error(this.errorText(res.status, data));
        this.render(data);
        this.dispatchEvent(new CustomEvent("hikitsugi-results", { detail: data, bubbles: true, composed: true }));
      } catch (err) {
        if (err.name === "AbortError" || seq !== this.seq) return;
        this.lastQuery = "";
        this.say("エラー: " + (err instanceof TypeError ? "サーバーに接続できません（" + this.apiBase + "）" : err.message), true);
      } finally {
        if (seq === this.seq) this.removeAttribute("aria-busy");
      }
    }

    errorText(status, data) {
      if (status === 401) return "認証が必要です（token または api-key を確認してください）";
      if (status === 403) return "この操作の権限がありません";
      if (status === 503) return "まだ検索できる索引がありません（先に取り込みを実行してください）";
      const d = data && data.detail;
      const msg = Array.isArray(d) ? d.map((x) => x.message || x.msg).join(" / ") : (typeof d === "string" ? d : "");
      if (status === 422 && body422Customer(d)) return "顧客が見つかりません: " + (this.customerId || "");
      return msg ? `${msg}（${status}）` : `サーバーエラー（${status}）`;
    }

    clear(keepText) {
      clearTimeout(this.timer);
      if (this.controller) this.controller.abort();
      this.seq++;
      if (!keepText) this.input.value = "";
      this.lastQuery = "";
      this.data = null;
      this.active = -1;
      this.list.replaceChildren();
      this.$("guidance").replaceChildren();
      const cust = this.$("customer");
      cust.replaceChildren();
      cust.hidden = true;
      this.input.setAttribute("aria-expanded", "false");
      this.input.removeAttribute("aria-activedescendant");
      const esc = this.$("escalate");
      esc.disabled = true;
      esc.setAttribute("aria-pressed", "false");
      this.removeAttribute("aria-busy");
      this.say(keepText ? "" : "クリアしました。");
    }

    say(text, error) {
      const s = this.$("status");
      s.textContent = text;
      s.className = error ? "status error" : "status";
    }

    /* ---------- rendering ---------- */
    render(data) {
      this.data = data;
      this.active = -1;
      this.input.removeAttribute("aria-activedescendant");
      this.renderGuidance(data.guidance);
      this.renderCustomer(data.customer);
      const items = data.results.map((r, i) => this.card(r, i));
      this.list.replaceChildren(...items);
      this.input.setAttribute("aria-expanded", items.length ? "true" : "false");
      if (!items.length) this.list.append(el("li", { class: "empty", role: "presentation", text: "該当する事例・マニュアルは見つかりませんでした。" }));
      const esc = this.$("escalate");
      esc.disabled = false;
      esc.setAttribute("aria-pressed", "false");
      const g = data.guidance;
      const gtext = !g ? "" : g.action === "escalate" ? "エスカレーションを推奨します。" : "自己解決できる見込みです。";
      this.say(`${data.results.length}件の結果（${Math.round(data.took_ms)} ms）。${gtext}`);
    }

    renderGuidance(g) {
      const box = this.$("guidance");
      if (!g) { box.replaceChildren(); return; }
      if (g.action === "escalate") {
        box.replaceChildren(el("div", { class: "guidance escalate", "data-action": "escalate" },
          el("strong", { text: "エスカレーションしてください" }),
          g.escalate_to ? document.createTextNode(`（→ ${g.escalate_to}）`) : null,
          el("div", { text: "理由: " + g.reason })));
      } else {
        const steps = (g.steps || []).map((s) => el("li", { text: s }));
        box.replaceChildren(el("div", { class: "guidance self", "data-action": "self_resolve" },
          el("strong", { text: "自己解決できる見込みです" }),
          document.createTextNode(`（確度 ${Number(g.confidence).toFixed(2)}）`),
          el("div", { text: "理由: " + g.reason }),
          steps.length ? el("ol", { "aria-label": "似た事例を解決した手順" }, ...steps) : null));
      }
    }

    renderCustomer(c) {
      const box = this.$("customer");
      if (!c) { box.replaceChildren(); box.hidden = true; return; }
      const items = [];
      for (const m of c.commitments || []) {
        const why = [m.reason && "理由: " + m.reason, m.approved_by && "承認: " + m.approved_by,
          "期限: " + (m.valid_until || "なし")].filter(Boolean).join(" / ");
        items.push(el("li", { class: "commitment" + (m.expired ? " is-expired" : "") },
          "特別対応", m.expired ? el("span", { class: "expired", text: `【期限切れ ${m.valid_until}】` }) : null,
          `: ${m.what} `, el("span", { class: "meta", text: `(${why})` }),
          ...(m.conflicts || []).map((c) => this.conflictNotice(c))));
      }
      for (const a of c.arrangements || []) items.push(el("li", { text: "取り決め: " + a }));
      for (const p of c.preferences || []) items.push(el("li", { text: "連絡の好み: " + p }));
      // Present only when this user may see them (staff in charge, or a handover grant).
      for (const e of c.emergency_contacts || []) {
        items.push(el("li", { class: "emergency", text: "緊急連絡先: " +
          [e.name, e.role && `（${e.role}）`, e.phone, e.email, e.note && `— ${e.note}`].filter(Boolean).join(" ") }));
      }
      box.replaceChildren(el("div", { class: "pinned" },
        el("h3", { text: `顧客: ${c.name}（${c.customer_id}）ランク${c.rank || "-"}・担当 ${c.owner || "-"}` }),
        el("ul", {}, ...items)));
      box.hidden = false;
    }

    card(r, i) {
      const url = new URL(r.url, this.apiBase + "/").href;
      const when = r.occurred_at ? "受付 " + r.occurred_at.slice(0, 10) : null;
      const meta = [r.source_id, when, r.customer, r.resolved_by && "対応: " + r.resolved_by,
        "スコア " + Number(r.score).toFixed(3)].filter(Boolean).join(" ・ ");
      const titleId = `r-${i}-title`;
      return el("li", { class: "card", role: "option", id: `r-${i}`, "aria-selected": "false",
        "aria-labelledby": titleId, "data-index": i, "data-source-id": r.source_id },
        el("div", { class: "head" },
          el("span", { class: "kind", text: KIND[r.kind] || r.kind }),
          el("a", { class: "title", id: titleId, href: url, target: "_blank", rel: "noopener", text: r.title })),
        el("div", { class: "meta", text: meta }),
        el("div", { class: "meta source", text: "出典: " + r.source_path + (r.context ? " ／ " + r.context : "") }),
        r.similar_count ? el("div", { class: "meta similar", text: `同様の事例 ${r.similar_count}件（${(r.similar_ids || []).slice(0, 5).join("、")}${r.similar_count > 5 ? "…" : ""}）` }) : null,
        r.redacted ? el("div", { class: "meta redacted", text: "担当外のお客様のため、一部を伏せて表示しています" }) : null,
        ...(r.conflicts || []).map((c) => this.conflictNotice(c)),
        el("div", { class: "snippet" }, ...snippetNodes(r.snippet)),
        r.resolution ? el("div", { class: "resolution" }, el("b", { text: "解決策: " }), r.resolution,
          r.cause ? el("br") : null, r.cause ? el("b", { text: "原因: " }) : null, r.cause || null) : null,
        el("div", { class: "fb", role: "group", "aria-label": "この結果の評価: " + r.title },
          el("button", { type: "button", class: "secondary", "data-outcome": "resolved", "aria-pressed": "false", text: "解決した" }),
          el("button", { type: "button", class: "secondary", "data-outcome": "not_helpful", "aria-pressed": "false", text: "役に立たなかった" })));
    }

    /* An open conflict: the message and a link to the other side (or its kind and date when the
       user may not see it). The link opens like a result (hikitsugi-open), never the card itself. */
    conflictNotice(c) {
      const o = c.other || {};
      const label = `${o.title || ""}${o.date ? "（" + String(o.date).slice(0, 10) + "）" : ""}`;
      let link = document.createTextNode(label);
      if (o.url && !o.hidden) {
        const url = new URL(o.url, this.apiBase + "/").href;
        link = el("a", { href: url, class: "conflict-link", target: "_blank", rel: "noopener", text: label });
        link.addEventListener("click", (e) => {
          e.preventDefault();
          e.stopPropagation();
          const ev = new CustomEvent("hikitsugi-open", { detail: { result: o, url, conflict: c }, bubbles: true,
            composed: true, cancelable: true });
          if (this.dispatchEvent(ev)) window.open(url, "_blank", "noopener");
        });
      }
      return el("div", { class: "conflict", role: "note", "data-conflict-id": c.conflict_id },
        el("strong", { text: "⚠ " + c.message }), el("br"), (c.side === "older" ? "新しい記録: " : "古い記録: "), link);
    }

    setActive(i) {
      const cards = this.list.querySelectorAll("li.card");
      cards.forEach((c, j) => { c.classList.toggle("active", j === i); c.setAttribute("aria-selected", String(j === i)); });
      this.active = i;
      if (i >= 0 && cards[i]) {
        this.input.setAttribute("aria-activedescendant", cards[i].id);
        cards[i].scrollIntoView({ block: "nearest" });
      } else {
        this.input.removeAttribute("aria-activedescendant");
      }
    }

    open(i) {
      const r = this.data && this.data.results[i];
      if (!r) return;
      const url = new URL(r.url, this.apiBase + "/").href;
      const ev = new CustomEvent("hikitsugi-open", { detail: { result: r, url }, bubbles: true, composed: true, cancelable: true });
      if (this.dispatchEvent(ev)) window.open(url, "_blank", "noopener");
    }

    /* ---------- feedback ---------- */
    async sendFeedback(outcome, sourceId, button) {
      const d = this.data;
      if (!d) return;
      const body = { outcome, search_id: d.search_id || null, query: d.query,
        result_ids: d.results.map((r) => r.source_id) };
      if (sourceId) body.source_id = sourceId;
      if (d.customer) body.customer = d.customer.customer_id;
      else if (this.customerId) body.customer = this.customerId;
      button.disabled = true;
      try {
        const res = await fetch(this.apiBase + "/feedback", {
          method: "POST", headers: this.headers(), body: JSON.stringify(body), credentials: "omit", mode: "cors",
        });
        const data = await res.json().catch(() => ({}));
        if (!res.ok) throw new Error(this.errorText(res.status, data));
        if (this.data !== d) return;
        const group = button.closest(".fb");
        if (group) group.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", "false"));
        button.setAttribute("aria-pressed", "true");
        let msg = `「${OUTCOME[outcome]}」を記録しました。`;
        if (outcome === "escalated" && d.guidance && d.guidance.escalate_to) msg += `エスカレーション先: ${d.guidance.escalate_to}`;
        this.say(msg);
        this.dispatchEvent(new CustomEvent("hikitsugi-feedback", { detail: data, bubbles: true, composed: true }));
      } catch (err) {
        this.say("記録できませんでした: " + (err instanceof TypeError ? "サーバーに接続できません" : err.message), true);
      } finally {
        button.disabled = false;
      }
    }
  }

  function body422Customer(detail) {
    return Array.isArray(detail) && detail.some((x) => x && x.field === "customer");
  }

  customElements.define("hikitsugi-search", HikitsugiSearch);
})();
