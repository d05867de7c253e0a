"""Personal data in free text: find it, mask it.

What counts (docs/access.md): phone numbers, e-mail addresses, postal addresses, and
personal names — written with an honorific (〇〇様/さま/さん/氏/殿/くん/君/ちゃん/先生),
or the names of people the customer records know (emergency contacts, people named
with an honorific in a record, e-mail senders), with or without an honorific or a title
(石原修, 石原総支配人, 石原に電話). Our own staff (record owners, approvers, note authors)
and customer (company) names are not personal data here: the first are needed to know
whom to ask, the second are the basic part of a record every viewer may see.

Patterns plus a lexicon of known names, not a named-entity model: it runs offline, in
microseconds per passage, and behaves the same on every machine.

Numbers and addresses are matched on a *folded* copy of the text — full-width ASCII to
ASCII, kanji digits (〇一二…九) to digits, every dash look-alike (including the long-vowel
mark 「ー」 typed in place of a hyphen) to ``-``, 「・」 to ``.`` — that has exactly one
character per original character, so every span found maps back to the original text.
A phone number is a run of digit groups (separated by hyphens, dots, spaces or
parentheses) of which some consecutive groups make 10–11 national digits starting with
0 (or +81): so 「11/05 090-0000-1234」 and 「10:05 090-…」 mask the number and keep the
date, where a single regular expression would have swallowed 「05 090-0000」 and left
「-1234」 behind. The patterns err on the side of masking (a serial number that looks like
a landline is masked). ``tests/test_masking.py`` holds them to a table of Japanese forms.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

MASK = "●●●"

# ------------------------------------------------------------------ folding (1 char -> 1 char)

_KANJI_DIGITS = "〇一二三四五六七八九"
_DASHES = "‐‑‒–—―−－ー─━﹣"
_FOLD = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}  # full-width ASCII
_FOLD.update({k: str(i) for i, k in enumerate(_KANJI_DIGITS)})
_FOLD.update({"零": "0", "　": " ", "・": ".", "（": "(", "）": ")", "＠": "@", "★": "@", "☆": "@"})
_FOLD.update(dict.fromkeys(_DASHES, "-"))
_FOLD_TABLE = str.maketrans(_FOLD)


def fold(text: str) -> str:
    """The text with one ASCII-ish character per original character (see module doc)."""
    return text.translate(_FOLD_TABLE)


# ------------------------------------------------------------------ numbers and addresses

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40|%2540|\[at\]|\(at\))[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
                    re.IGNORECASE)
_RUN = re.compile(r"(?:\+ ?)?\(?\d(?:[\d\-.() \t]*\d)?\)?")
_GROUP = re.compile(r"\d+")
_POSTAL = re.compile(r"〒\s*\d{3}-?\d{4}[^\n。]*|郵便番号[:：\s]*\d{3}-\d{4}")
_PREF = r"(?:東京都|北海道|(?:大阪|京都)府|[一-龥\d]{2,3}県)"  # on folded text: 三重県 is 3重県
_ADDRESS = re.compile(rf"{_PREF}[^\s、。,「」()（）]{{1,40}}?(?:\d+丁目|\d+番地?|\d+号|\d+-\d+)[\d\-丁目番地号]*")
_MOBILE_11 = ("050", "060", "070", "080", "090", "0800")


def _national(groups: list[str], plus: bool) -> str | None:
    """The national number (0…) these consecutive digit groups spell, or None."""
    nat = list(groups)
    if plus:  # +81 90-…, +81 (0)3-…, +819012345678
        if not nat[0].startswith("81"):
            return None
        nat = ([nat[0][2:]] if nat[0][2:] else []) + nat[1:]
        if not nat:
            return None
        if nat[0] == "0" and len(nat) > 1:
            nat = ["0" + nat[1]] + nat[2:]
        elif not nat[0].startswith("0"):
            nat[0] = "0" + nat[0]
    digits = "".join(nat)
    if not digits.startswith("0") or digits.startswith("00"):
        return None
    if not (len(digits) == 10 or (len(digits) == 11 and digits.startswith(_MOBILE_11))):
        return None
    if len(nat) > 1 and (not 2 <= len(nat[0]) <= 5 or not 3 <= len(nat[-1]) <= 4
                         or any(len(g) > 4 for g in nat[1:-1])):
        return None
    return digits


def _phones(folded: str) -> list[tuple[int, int]]:
    spans = []
    for run in _RUN.finditer(folded):
        text, base = run.group(), run.start()
        groups = [(m.start(), m.end(), m.group()) for m in _GROUP.finditer(text)]
        i = 0
        while i < len(groups):
            plus = i == 0 and "+" in text[:groups[0][0]]
            best, total = None, 0
            for j in range(i, min(i + 6, len(groups))):
                total += len(groups[j][2])
                if total > 14:
                    break
                if _national([g[2] for g in groups[i:j + 1]], plus) is not None:
                    best = j
            if best is None:
                i += 1
                continue
            start, end = groups[i][0], groups[best][1]
            while start > 0 and text[start - 1] in "(+ " and (text[start - 1] != " " or i == 0):
                start -= 1
            if end < len(text) and text[end] == ")" and "(" in text[start:end]:
                end += 1
            spans.append((base + start, base + end))
            i = best + 1
    return spans


# ------------------------------------------------------------------ names

_NAME_CHARS = "\u4e00-\u9fff々〆ヵヶァ-ヴー"
_HONORIFICS = "様|さま|さん|氏|殿|くん|君|ちゃん|先生"
# each honorific with the words it starts that are not honorifics (様子, 氏名, 殿堂, 君主 …)
_HON = r"(様(?![子式々相])|さま|さん|氏(?![名族])|殿(?![堂下])|くん|君(?![主臨子])|ちゃん|先生)"
_HONORIFIC = re.compile(rf"([{_NAME_CHARS}]{{1,8}}(?:[ 　][{_NAME_CHARS}ぁ-ゖ]{{1,6}})?){_HON}")
# One character before an honorific that is not a name (仕様, お客様, 皆さん, お子さん, 彼氏 …)
_NOT_NAMES = set("仕同多模異客皆奥王神殿各貴左有然両上外今文紋図態子父母兄姉弟妹娘孫嫁婿坊婆爺仏彼諸源平赤若主暴夫細方")
# Words before an honorific that are not names: set phrases, roles, departments, organizations.
_NOT_NAME_WORDS = ("苦労", "馳走", "世話", "得意", "愁傷", "旦那", "息子", "担当者", "担当", "営業", "業者", "先方",
                   "相手", "業務", "事務", "皆様", "お客", "御社", "貴社", "弊社", "会社", "取引先", "医者", "大家",
                   "運転手", "看護師", "職員", "社員", "係員", "駅員", "店員", "作業員", "総務", "経理", "人事",
                   "技術", "情シス", "情報システム", "品質", "製造", "物流", "管理", "開発", "企画", "広報", "法務",
                   "購買", "設備", "施設", "保守", "サポート", "センター", "本部", "支店", "支社", "窓口", "スタッフ",
                   "メンバー", "ユーザー", "オーナー", "ドライバー", "ご家族", "家族", "関係者", "代理店", "販売店")
_ORG_END = set("社店院局署庁課係屋業館校園客者員手官")
# Titles between a name and an honorific (石原センター長様 → 石原); longest first.
_ROLE_TITLES = tuple(sorted(("総支配人", "支配人", "センター長", "事務長", "理事長", "社長", "副社長", "部長", "課長",
                             "係長", "店長", "所長", "院長", "室長", "局長", "工場長", "主任", "専務", "常務", "会長",
                             "担当者", "担当", "先生", "マネージャー", "リーダー", "次長", "代表"),
                            key=len, reverse=True))
_TITLES = (rf"(?:{_HONORIFICS}|総支配人|支配人|センター長|マネージャー|マネジャー|リーダー|"
           r"[一-龥ァ-ヴー]{0,6}?(?:長|課|部|係|担当|師|役|任|査|問|表|務|員|官|監|督|士|人))")
_FULL_NAME = re.compile(rf"^([{_NAME_CHARS}]{{1,4}})[ 　]+([{_NAME_CHARS}ぁ-ゖ]{{1,4}})$")


@dataclass(frozen=True)
class Lexicon:
    """Names known from the data: people to mask, and words never to mask."""

    people: frozenset[str] = frozenset()  # "石原 修" (surname, a space, given name) or a surname alone ("杉浦")
    keep: frozenset[str] = frozenset()  # customer names and aliases, our staff's names


def person_name(value: str | None) -> str | None:
    """``value`` when it looks like a person's name ("石原 修"), else None ("倉庫当番", "フロント")."""
    if not value:
        return None
    v = re.sub(r"[（(].*?[）)]", "", str(value)).strip()
    return v if _FULL_NAME.match(v) else None


def honorific_names(text: str, lexicon: Lexicon | None = None) -> set[str]:
    """Names written with an honorific in ``text`` (川口様 → 川口): how a record names people."""
    return {text[b:e] for b, e, _ in _honorific_spans(text, lexicon or Lexicon())}


@lru_cache(maxsize=64)
def _compiled(people: frozenset[str], keep: frozenset[str]) -> tuple[re.Pattern | None, ...]:
    """(full names, surname + title, bare surname, words to keep) patterns for a lexicon."""
    fulls, titled, bare = [], set(), set()
    for p in people:
        m = _FULL_NAME.match(p)
        surname = m.group(1) if m else p.strip()
        if m:
            fulls.append(re.escape(m.group(1)) + r"[ 　]?" + re.escape(m.group(2)))
        if not surname or surname in keep or not re.fullmatch(rf"[{_NAME_CHARS}]+", surname):
            continue
        titled.add(re.escape(surname))
        if len(surname) >= 2:  # a one-character surname (森) alone is too often a word
            bare.add(re.escape(surname))
    by_len = lambda xs: "|".join(sorted(xs, key=len, reverse=True))  # noqa: E731
    full = re.compile(by_len(fulls)) if fulls else None
    sur = re.compile(rf"(?:{by_len(titled)})(?={_TITLES})") if titled else None
    alone = re.compile(rf"(?:{by_len(bare)})(?![{_NAME_CHARS}])") if bare else None
    kept = re.compile(by_len(re.escape(k) for k in keep if len(k) >= 2)) if any(len(k) >= 2 for k in keep) else None
    return full, sur, alone, kept


def _honorific_spans(text: str, lex: Lexicon) -> list[tuple[int, int, str]]:
    spans = []
    for m in _HONORIFIC.finditer(text):
        name, start = m.group(1), m.start(1)
        first, _, rest = name.partition(" ") if " " in name else name.partition("　")
        if rest and (first.endswith(_NOT_NAME_WORDS) or first in lex.keep):  # 担当 森様: the name is the last part
            name, start = rest, m.end(1) - len(rest)
        for title in _ROLE_TITLES:  # 石原センター長様: the person is before the title
            if name.endswith(title):
                name = name[:-len(title)].rstrip(" 　の")
                break
        if not name or name in _NOT_NAMES or name.endswith(_NOT_NAME_WORDS) or \
                (len(name) > 1 and name[-1] in _ORG_END):
            continue
        if name in lex.keep or any(name.endswith(k) for k in lex.keep if len(k) >= 2):
            continue
        spans.append((start, start + len(name), "name"))
    return spans


def find(text: str, lexicon: Lexicon | None = None) -> list[tuple[int, int, str]]:
    """Spans of personal data in ``text``: (start, end, kind), kind in phone/email/address/name."""
    if not text:
        return []
    lex = lexicon or Lexicon()
    folded = fold(text)
    spans: list[tuple[int, int, str]] = []
    spans += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(folded)]
    spans += [(b, e, "phone") for b, e in _phones(folded)]
    spans += [(m.start(), m.end(), "address") for p in (_POSTAL, _ADDRESS) for m in p.finditer(folded)]
    names = _honorific_spans(text, lex)
    full, sur, alone, kept = _compiled(lex.people, lex.keep)
    for pattern in (full, sur, alone):
        if pattern is not None:
            names += [(m.start(), m.end(), "name") for m in pattern.finditer(text)]
    if kept is not None and names:  # a known person's surname inside a customer's or a staff member's name
        inside = [(m.start(), m.end()) for m in kept.finditer(text)]
        names = [s for s in names if not any(b <= s[0] and s[1] <= e for b, e in inside)]
    return _merge(spans + names)


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for b, e, k in sorted(spans):
        if out and b <= out[-1][1]:
            pb, pe, pk = out[-1]
            out[-1] = (pb, max(pe, e), pk)
        else:
            out.append((b, e, k))
    return out


def mask(text: str, lexicon: Lexicon | None = None) -> tuple[str, set[str]]:
    """``text`` with every span of personal data replaced by ●●●, and the kinds masked."""
    spans = find(text, lexicon)
    if not spans:
        return text, set()
    parts, pos = [], 0
    for b, e, _ in spans:
        parts.append(text[pos:b])
        parts.append(MASK)
        pos = e
    parts.append(text[pos:])
    return "".join(parts), {k for _, _, k in spans}


# ------------------------------------------------------------------ logs

_log_lock = threading.Lock()
_log_lexicon = Lexicon()
_SECRET_PARAM = re.compile(r"(?i)\b(token|access_token|api_key|apikey|key|secret|password)=([^&\s\"']+)")


def remember_for_logs(lexicon: Lexicon) -> None:
    """Names known from the customer records, used from now on by :func:`mask_text` too
    (the process's log lines and the search log): the union of every lexicon seen."""
    global _log_lexicon
    with _log_lock:
        _log_lexicon = Lexicon(_log_lexicon.people | lexicon.people, _log_lexicon.keep | lexicon.keep)


def mask_text(text: str, lexicon: Lexicon | None = None) -> str:
    """Mask for logs and anything stored about a query: the patterns, the names known from
    the customer records, URL-encoded forms (a request line) and credentials in query strings."""
    if not text:
        return text
    lex = lexicon if lexicon is not None else _log_lexicon
    out = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={MASK}", text)
    if "%" in out:
        decoded = unquote(out)
        if decoded != out and find(decoded, lex):
            out = decoded
    return mask(out, lex)[0]
