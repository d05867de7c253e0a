"""Does a newer text contradict an older piece of advice? A small scorer that says why.

The detection in :mod:`hikitsugi.insights.conflicts` finds pairs on the same topic by
their stored embeddings; this module reads the two texts and returns **signals**, each a
plain rule over one sentence of each side with a weight and an explanation a lead can
check in seconds. The pair is a conflict when the weights add up to the threshold
(``conflict_threshold``). No model decides on its own, so every flag can be argued with.

Signals (weights are fixed here, the threshold is chosen on the dev set):

* ``negated`` (+1.0) — a sentence of the newer text says something the older advice
  prescribes does not work or must not be done: a failure or prohibition cue
  (改善せず, 効果なし, 直らない, 不要, しないこと, 使えなくなった, できない …) whose
  object — the words just before it — is the advice's own (shares its terms). Not when
  the cue is a condition (改善しない場合は …), nor when the advice says the same.
* ``value`` (+0.8) — the two sentences talk about the same thing (shared terms) with
  different values of the same unit (30万枚 / 25万枚, 15時 / 13時, v4.2 / v4.5, 60日前 /
  90日前, +2 / -1). A value that stays inside the advice's bound (20分 for 「30分以内」)
  is no contradiction.
* ``polarity`` (+0.8) — opposite words on the same thing: 無償 / 有償, 必要 / 不要,
  ON / OFF, 有効 / 無効.
* ``superseded`` (+0.6) — the newer sentence says the thing changed (変更, 変わった,
  見直し, 廃止, 現在は, 今後は, ではなく …) and shares terms with the advice.
* ``manual_ref`` (+0.3, manual passages only) — the newer text names the manual, a
  procedure or a notice (マニュアル, 手順, 通達, 基準, 方針, 仕様) in a sentence with a cue.
* ``ended_early`` / ``extended`` (+1.0, commitments only) — the note ends, changes or
  extends the commitment at a date the record does not say (no end date, or another one).
* ``as_recorded`` (-1.0, commitments only) — the note says the commitment ended or
  continues exactly as the record's dates say.
* ``confirmed`` (-0.8) — the newer text reports the advice's own fix working
  (…を清掃して解消); ``agrees`` (-0.5) — it says so in words (前回と同じ, どおり).

Terms are what Japanese text is made of without a dictionary: katakana words, Latin
letters and digits (E-203, v4.2), and pairs of adjacent kanji. Two sentences are *about
the same thing* when the terms they share weigh enough: each term weighs its inverse
document frequency over the corpus compared (``idf``: ln(documents / documents with the
term)), so one rare word (Webhook, ロック) ties two sentences while one everyday word of
the desk (アドレス, as in IPアドレス and アドレス帳) does not.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Iterable

WEIGHTS = {"negated": 1.0, "value": 0.8, "polarity": 0.8, "superseded": 0.6, "manual_ref": 0.3,
           "ended_early": 1.0, "extended": 1.0, "as_recorded": -1.0, "confirmed": -0.8, "agrees": -0.5}

# Generic words of support records: they tie any two tickets together, so they never count as shared terms.
STOP = {
    "確認", "対応", "案内", "実施", "解決", "解消", "改善", "問題", "場合", "発生", "必要", "状態", "現在", "以前", "今後",
    "手順", "方法", "変更", "お客", "客様", "連絡", "電話", "本日", "今回", "前回", "同様", "症状", "再発", "設定", "表示",
    "使用", "利用", "依頼", "予定", "完了", "報告", "了承", "説明", "相談", "合意", "承認", "以内", "以降", "以上", "当社",
    "先方", "様子", "原因", "内容", "事例", "記録", "来月", "今月", "先月", "翌日", "当日", "一度", "一時", "時的", "可能",
    "不要", "不可", "無効", "有効", "終了", "延長", "更新", "見直", "基準", "運用", "方針", "通達", "仕様", "技術", "課長",
    "部長", "担当", "営業", "二次", "一次", "サポート", "お願い", "ください", "こと", "もの", "ため", "よう",
}

_TERM_RE = re.compile(r"[ァ-ヴヵヶー]{2,}|[A-Za-z][A-Za-z0-9.\-+]*[A-Za-z0-9]|[A-Za-z]|\d+[A-Za-z][A-Za-z0-9]*"
                      r"|[A-Za-z]+-\d+|[一-龥々〆]{2,}")
_SENT_RE = re.compile(r"[^。！？!?\n；;]+[。！？!?；;]?")

FAIL = (r"(?:改善|解消|解決|回復|復旧)(?:しな|せず|されな|されず|には至らな|に至らず|できな)|直らな|直らず|治らな|"
        r"効果(?:が|は)?(?:な|無)|変わらな|変化(?:が|は)?な|うまくいかな|失敗|意味(?:が|は)?な|逆効果|逆に|悪化|NG|ダメ|だめ|駄目")
PROHIBIT = (r"不要|必要(?:は|が)?な[いく]|しない(?:で|こと|よう)|しないこと|してはいけな|してはならな|禁止|不可|非推奨|"
            r"行わな|行わず|中止|取りやめ|廃止|使わ(?:ず|ない)|案内しな|(?:でき|使え|選べ|表示され|使用でき)なくな")
# "X では/でも/しても … ない": the means X failed (X is the text before the particle)
MEANS_FAIL = re.compile(r"(?:では|でも|ても|だと|のままでは|そのまま|を試したが|したが)(?P<rest>[^。、]{1,24}?)(?:な[いかく]|ず)(?![にの])")
SUPERSEDE = (r"現在は|今後は|以降は|からは|(?:に|へ|を)変更|変更(?:に|と|した|する)|変わ(?:った|りました|る)|変え(?:た|ました)|"
             r"改定|改訂|見直|新しい(?:手順|方法|設定|運用|基準)|旧(?:手順|設定|仕様|版|方式|形式)|以前の|従来の|仕様変更|"
             r"切り替え|移行|置き換え|代わりに|ではなく|でなく|廃止|打ち切|撤回|なくな(?:った|りました)|になった|ようになった")
END = r"終了|打ち切|廃止|取りやめ|やめ|中止|終わ|なくな|外した|見送|受付終了"
EXTEND = r"延長|更新|継続"
# a cue followed by a noun + は / なら / 場合 is a condition or a relative clause (改善しない色は交換), not a report
CONDITION_AFTER = re.compile(r"^(?:い|かった)?(?:[一-龥ァ-ヴー]{1,4})?(?:場合|なら|ときは|時は|たら|には|は|と[はき]|ようなら|際は)")
CONFIRM = re.compile(r"(?:で|により|によって|して|し、)(?:解決|解消|改善|復旧|直った|直りました|正常)")
AGREE = re.compile(r"前回(?:の事例)?と同じ|前回同様|同じ(?:手順|対処|対応)で|どおり|通りに|約束どおり|ルールどおり|予定どおり")
MANUAL_WORDS = re.compile(r"マニュアル|手順書|ガイド|FAQ|記載|通達|基準|方針|仕様")
_CUE = re.compile(f"{FAIL}|{PROHIBIT}")
_SUPER = re.compile(SUPERSEDE)
_END = re.compile(END)
_EXTEND = re.compile(EXTEND)

POLARITY = [
    (re.compile(r"無償|無料|費用(?:は|が)?かからな|費用なし|負担なし|範囲内|保守料の範囲"),
     re.compile(r"有償|有料|費用が(?:発生|かかる)|実費|請求する")),
    (re.compile(r"(?<![不])必要(?![はがの]?な)"), re.compile(r"不要|必要(?:は|が)?な[いく]")),
    (re.compile(r"\bON\b|オン(?!ライン)|有効に"), re.compile(r"\bOFF\b|オフ|無効に")),
]

_QTY = re.compile(
    r"(?P<sign>[+\-＋－])?(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>万枚|枚|分間|分|時間|営業日|日前|日|週間|か月|ヶ月|カ月|年|%|％|円|名|人|回|"
    r"秒|mm|m(?![A-Za-z])|GB|MB|dpi|時)(?P<bound>以内|まで|以下|未満|以上|超)?")
_VERSION = re.compile(r"\bv(\d+(?:\.\d+)+)", re.I)
_PORT = re.compile(r"ポート\s*(\d{2,5})|(\d{2,5})\s*番ポート|:(\d{3,5})/")
_ADJUST = re.compile(r"(?:調整値|補正値|設定値)\s*(?:を|は|が)?\s*([+\-＋－]?\d+)")
_TIMING = [(re.compile(r"当日中|当日|即日"), 0.0), (re.compile(r"翌営業日|翌日"), 1.0), (re.compile(r"翌々営業日|翌々日"), 2.0)]

_UNIT = {"万枚": ("枚", 10000), "枚": ("枚", 1), "分": ("min", 1), "分間": ("min", 1), "時間": ("min", 60),
         "秒": ("min", 1 / 60), "営業日": ("bday", 1), "日前": ("days_before", 1), "日": ("day", 1),
         "週間": ("day", 7), "か月": ("month", 1), "ヶ月": ("month", 1), "カ月": ("month", 1), "年": ("year", 1),
         "%": ("%", 1), "％": ("%", 1), "円": ("yen", 1), "名": ("people", 1), "人": ("people", 1), "回": ("times", 1),
         "mm": ("mm", 1), "m": ("mm", 1000), "GB": ("byte", 1024), "MB": ("byte", 1), "dpi": ("dpi", 1),
         "時": ("clock", 1)}


@dataclass
class Signal:
    name: str
    weight: float
    text: str  # why, in Japanese, for the lead
    quote_a: str = ""  # the older side's sentence it is about
    quote_b: str = ""  # the newer side's sentence

    def to_dict(self) -> dict:
        d = asdict(self)
        d["signal"] = d.pop("name")
        return d


@dataclass
class Verdict:
    score: float
    signals: list[Signal] = field(default_factory=list)


# ------------------------------------------------------------------ text units

def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT_RE.findall(_norm(text)) if s.strip()]


def terms(text: str) -> set[str]:
    """Content terms: katakana words, Latin/digit tokens, kanji pairs; generic ones left out."""
    out: set[str] = set()
    for m in _TERM_RE.finditer(_norm(text)):
        t = m.group(0)
        if t[0] in "一二三四五六七八九十" or re.match(r"[一-龥々〆]", t):
            pairs = {t[i:i + 2] for i in range(len(t) - 1)}
            out |= pairs
        else:
            t = t.lower().rstrip("ー") if re.match(r"[ァ-ヴ]", t) else t.lower()
            if len(t) >= 2 or t.isalpha():
                out.add(t)
    return {t for t in out if t not in STOP and not t.isdigit()}


def overlap(a: set[str], b: set[str], idf: dict[str, float] | None = None) -> float:
    """Weight of the shared terms: their idf when known; without idf (a unit test), a
    katakana/Latin term counts 2 and a kanji pair 1."""
    shared = a & b
    if idf is None:
        return float(sum(1 if re.match(r"[一-龥々〆]", t) else 2 for t in shared))
    top = idf.get("", 0.0)  # the weight of a term seen in one document only
    return sum(idf.get(t, top) for t in shared)


# ------------------------------------------------------------------ values

@dataclass(frozen=True)
class _Value:
    kind: str
    value: float
    bound: str | None
    raw: str


def values(sentence: str) -> list[_Value]:
    out: list[_Value] = []
    for m in _QTY.finditer(sentence):
        unit, scale = _UNIT[m.group("unit")]
        sign = -1 if m.group("sign") in ("-", "－") else 1
        bound = m.group("bound")
        b = "max" if bound in ("以内", "まで", "以下", "未満") else "min" if bound in ("以上", "超") else None
        # 「30分から1時間に」「60日前では間に合わない」: the old value, named to be replaced
        frm = "から" if re.match(r"から|では|だと|のままでは", sentence[m.end():m.end() + 5]) else ""
        out.append(_Value(unit, sign * float(m.group("num")) * scale, b, m.group(0) + frm))
    out += [_Value("version", float(len(m.group(1))), None, "v" + m.group(1)) for m in _VERSION.finditer(sentence)]
    for m in _PORT.finditer(sentence):
        out.append(_Value("port", float(next(g for g in m.groups() if g)), None, m.group(0)))
    for m in _ADJUST.finditer(sentence):
        out.append(_Value("adjust", float(m.group(1).replace("＋", "+").replace("－", "-")), None, m.group(0)))
    rest = sentence
    for rx, v in reversed(_TIMING):  # 翌々営業日 before 翌営業日 before 当日
        for m in rx.finditer(rest):
            out.append(_Value("timing", v, None, m.group(0)))
        rest = rx.sub("", rest)
    return out


def _contradicting_values(adv: list[_Value], new: list[_Value]) -> tuple[_Value, _Value] | None:
    """A value of the advice the newer sentence does not repeat, against one of the newer sentence's
    own values of the same unit. Values both sides state (22時～6時 in both) are no contradiction;
    a newer value inside the advice's bound (20分 for 「30分以内」) is none either."""
    for a in adv:
        if any(b.kind == a.kind and b.value == a.value for b in new if not b.raw.endswith("から")):
            continue
        for b in new:
            if b.kind != a.kind or b.raw.endswith("から") or any(x.kind == b.kind and x.value == b.value for x in adv):
                continue
            if a.kind == "version":
                if a.raw.lower() != b.raw.lower():
                    return a, b
                continue
            if b.bound is None and a.bound == "max" and b.value <= a.value:
                continue  # 20分 inside 「30分以内」
            if b.bound is None and a.bound == "min" and b.value >= a.value:
                continue
            return a, b
    return None


# ------------------------------------------------------------------ dates (commitments)

_DATE_YMD = re.compile(r"(\d{4})年(\d{1,2})月(?:(\d{1,2})日|(末))?|(\d{4})/(\d{1,2})/(\d{1,2})")
_DATE_MD = re.compile(r"(?<![\d/年])(\d{1,2})月(末|(\d{1,2})日)|(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])")


def _month_end(y: int, m: int) -> dt.date:
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def mentioned_dates(sentence: str, ref: dt.date) -> list[dt.date]:
    """Dates a note names (2027年6月末, 11月末, 12/15), years filled from the note's own date."""
    out = []
    for m in _DATE_YMD.finditer(sentence):
        try:
            if m.group(1):
                y, mo = int(m.group(1)), int(m.group(2))
                out.append(dt.date(y, mo, int(m.group(3))) if m.group(3) else _month_end(y, mo))
            else:
                out.append(dt.date(int(m.group(5)), int(m.group(6)), int(m.group(7))))
        except ValueError:
            pass
    for m in _DATE_MD.finditer(sentence):
        try:
            if m.group(1):
                mo = int(m.group(1))
                y = ref.year + (mo < ref.month - 2)
                out.append(_month_end(y, mo) if m.group(2) == "末" else dt.date(y, mo, int(m.group(3))))
            else:
                mo, d = int(m.group(4)), int(m.group(5))
                y = ref.year + (mo < ref.month - 2)
                out.append(dt.date(y, mo, d))
        except ValueError:
            pass
    return out


# ------------------------------------------------------------------ the scorer

def _best(adv_terms: list[set[str]], t: set[str], idf: dict[str, float] | None) -> tuple[float, int]:
    best, at = 0.0, -1
    for i, at_terms in enumerate(adv_terms):
        o = overlap(at_terms, t, idf)
        if o > best:
            best, at = o, i
    return best, at


def _clip(s: str, n: int = 160) -> str:
    return s if len(s) <= n else s[:n] + "…"


def compare(advice: str, newer: str, *, kind: str, idf: dict[str, float] | None = None,
            advice_dates: tuple[str | None, str | None] = (None, None), newer_date: str | None = None,
            record_ends: Iterable[str | None] = (), topic: str = "", min_overlap: float = 2.0) -> Verdict:
    """Signals that ``newer`` contradicts (or agrees with) ``advice``.

    ``kind`` is case_case, manual_newer or commitment_note. For commitments,
    ``advice_dates`` is (valid_from, valid_until), ``newer_date`` the note's date and
    ``record_ends`` the end dates of the customer's commitments on the same matter (a
    renewal already on the record). ``topic`` (a manual passage's headings) adds its terms to
    every sentence of the advice: 「15時までの受付」 is about トナーの発注 because its section says so."""
    adv_sents = sentences(advice)
    topic_terms = terms(topic)
    adv_terms = [terms(s) | topic_terms for s in adv_sents]
    found: dict[str, Signal] = {}

    def add(sig: Signal) -> None:
        if sig.name not in found or abs(sig.weight) > abs(found[sig.name].weight):
            found[sig.name] = sig

    for s in sentences(newer):
        s_terms = terms(s)
        whole, wi = _best(adv_terms, s_terms, idf)
        # negated: a failure / prohibition cue whose object is the advice's
        contra = False
        cues = [(m.start(), m.end(), m.group(0)) for m in _CUE.finditer(s)]
        cues += [(m.start(), m.end(), m.group(0)) for m in MEANS_FAIL.finditer(s)]
        for start, end, cue in sorted(cues):
            if CONDITION_AFTER.match(s[end:]):
                continue
            target = s[max(0, start - 28):start]
            t_terms = terms(target)
            o, i = _best(adv_terms, t_terms, idf)
            if o >= min_overlap and not _CUE.search(adv_sents[i]):
                add(Signal("negated", WEIGHTS["negated"],
                           f"新しい方が「{cue}」と、古い方の手順（{'・'.join(sorted(t_terms & adv_terms[i])[:4])}）"
                           "が効かない・してはいけないと述べています", _clip(adv_sents[i]), _clip(s)))
                contra = True
                break
        if whole >= min_overlap:
            a_sent = adv_sents[wi]
            pair = _contradicting_values(values(a_sent), values(s))
            if pair:
                contra = True
                add(Signal("value", WEIGHTS["value"], f"同じ事柄で値が違います（古い方 {pair[0].raw} ／ 新しい方 {pair[1].raw}）",
                           _clip(a_sent), _clip(s)))
            for pos, neg in POLARITY:
                pa, na, pb, nb = pos.search(a_sent), neg.search(a_sent), pos.search(s), neg.search(s)
                if (pa and not na and nb and not pb) or (na and not pa and pb and not nb):
                    wa, wb = (pa or na).group(0), (nb or pb).group(0)
                    contra = True
                    add(Signal("polarity", WEIGHTS["polarity"], f"同じ事柄で逆のことを言っています（「{wa}」／「{wb}」）",
                               _clip(a_sent), _clip(s)))
            sup = _SUPER.search(s)
            if sup:
                add(Signal("superseded", WEIGHTS["superseded"], f"新しい方が変わったと述べています（「{sup.group(0)}」）",
                           _clip(a_sent), _clip(s)))
            if kind == "manual_newer" and MANUAL_WORDS.search(s) and (_CUE.search(s) or sup):
                add(Signal("manual_ref", WEIGHTS["manual_ref"], "手順・マニュアル・通達に触れて、違うやり方を述べています",
                           _clip(a_sent), _clip(s)))
            if kind == "commitment_note":
                _commitment_dates(s, a_sent, advice_dates, newer_date, record_ends, add)
        # agreement: the advice's own action reported as what fixed it
        if whole >= min_overlap and not contra:
            c = CONFIRM.search(s)
            if c and not _CUE.search(s) and overlap(terms(s[max(0, c.start() - 16):c.start()]),
                                                    adv_terms[wi], idf) >= min_overlap:
                add(Signal("confirmed", WEIGHTS["confirmed"], "新しい方でも古い方と同じ対処で解決しています",
                           _clip(adv_sents[wi]), _clip(s)))
        ag = AGREE.search(s)
        if ag and whole > 0:
            add(Signal("agrees", WEIGHTS["agrees"], f"新しい方が古い方と同じだと述べています（「{ag.group(0)}」）",
                       _clip(adv_sents[wi]) if wi >= 0 else "", _clip(s)))
    if {"negated", "value", "polarity", "ended_early", "extended"} & set(found):
        found.pop("confirmed", None)  # one step that agrees does not cancel another that is contradicted
    if kind == "commitment_note" and _expired_before(advice_dates[1], newer_date):
        # written after the commitment's recorded end: only an extension contradicts the record
        found = {k: v for k, v in found.items() if k in ("extended", "as_recorded", "agrees", "confirmed")}
        if "extended" not in found:
            found["as_recorded"] = Signal("as_recorded", WEIGHTS["as_recorded"],
                                          f"カルテの期限（{advice_dates[1]}）が過ぎた後のメモです", _clip(advice), "")
    signals = sorted(found.values(), key=lambda x: -x.weight)
    return Verdict(round(sum(x.weight for x in signals), 3), signals)


def _expired_before(until: str | None, note_date: str | None) -> bool:
    u, n = _day(until), _day(note_date)
    return u is not None and n is not None and n > u


def _commitment_dates(s: str, a_sent: str, advice_dates, newer_date, record_ends, add) -> None:
    """A note ending, changing or extending a commitment: against the dates on the record."""
    if not newer_date:
        return
    try:
        note_day = dt.date.fromisoformat(newer_date[:10])
    except ValueError:
        return
    until = _day(advice_dates[1])
    named = mentioned_dates(s, note_day)
    end = _END.search(s)
    ext = _EXTEND.search(s)
    if end:
        if until is not None and (note_day >= until - dt.timedelta(days=3) or any(d >= until for d in named)):
            add(Signal("as_recorded", WEIGHTS["as_recorded"],
                       f"終了はカルテの期限（{until.isoformat()}）どおりです", _clip(a_sent), _clip(s)))
        else:
            when = f"期限 {until.isoformat()} より前に" if until else "期限のない約束が"
            add(Signal("ended_early", WEIGHTS["ended_early"],
                       f"カルテでは{when}終わる・変わるとは書かれていません（「{end.group(0)}」）", _clip(a_sent), _clip(s)))
    if ext and named:
        later = max(named)
        ends = [d for d in (_day(x) for x in record_ends) if d is not None]
        if until is not None and later > until and not any(d >= later for d in ends):
            add(Signal("extended", WEIGHTS["extended"],
                       f"カルテの期限 {until.isoformat()} を越えて {later.isoformat()} まで延長・更新されています（カルテ未反映）",
                       _clip(a_sent), _clip(s)))
        elif any(d >= later for d in ends):
            add(Signal("as_recorded", WEIGHTS["as_recorded"], "延長・更新はカルテに記録済みです", _clip(a_sent), _clip(s)))


def _day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
