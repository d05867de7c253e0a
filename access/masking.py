"""Personal data in free text: find it, mask it.

What counts (docs/access.md): phone numbers, e-mail addresses, postal addresses, and
personal names — written as 〇〇様/さん/氏/殿, or the names of people listed in customer
records (emergency contacts, e-mail senders). Staff names and customer (company) names
are not personal data here: the first are needed to know whom to ask, the second are
the basic part of a record every viewer may see.

Patterns plus a lexicon of known names, not a named-entity model: it runs offline, in
microseconds per passage, and behaves the same on every machine. The patterns err on the
side of masking (a serial number that looks like a phone number is masked); the
property test in tests/test_access_property.py holds them to what this module claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MASK = "●●●"

_DASH = "\\-‐‑‒–—―−－"
_SEP = rf"[\s(){_DASH}（）]{{0,2}}"
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_PHONE = re.compile(rf"(?<![\d+＋])(?:[+＋][8８][1１]{_SEP}[0０]?|[0０])\d{{1,4}}{_SEP}\d{{1,4}}{_SEP}\d{{3,4}}(?!\d)")
_POSTAL = re.compile(rf"〒\s*\d{{3}}[{_DASH}]?\d{{4}}[^\n。]*|郵便番号[:：\s]*\d{{3}}[{_DASH}]\d{{4}}")
_PREF = r"(?:東京都|北海道|(?:大阪|京都)府|[一-龥]{2,3}県)"
_ADDRESS = re.compile(rf"{_PREF}[^\s、。,「」()（）]{{1,40}}?(?:\d+丁目|\d+番地?|\d+号|\d+[{_DASH}]\d+)[\d{_DASH}丁目番地号]*")
_NAME_CHARS = "\u4e00-\u9fff々〆ヵヶァ-ヴー"
_HONORIFIC = re.compile(
    rf"([{_NAME_CHARS}]{{1,6}}(?:[ 　][{_NAME_CHARS}ぁ-ゖ]{{1,6}})?)(様|さん|氏|殿)(?![子式々相])")
# x様 words that are not names (仕様 = specification, 同様 = likewise, お客様 …)
_NOT_NAME_END = set("仕同多模異客皆奥王神殿各貴左有然一両上外如何斯今文紋図態")
# 担当さん, 営業さん, 社長さん: roles, not names
_ROLE_WORDS = ("担当", "営業", "業者", "社長", "部長", "課長", "店長", "所長", "院長", "先方", "相手", "業務", "事務")
_TITLES = r"(?:様|さん|氏|殿|先生|[一-龥ァ-ヴー]{0,6}?(?:長|課|部|係|担当|師))"
_FULL_NAME = re.compile(rf"^([{_NAME_CHARS}]{{1,4}})[ 　]+([{_NAME_CHARS}ぁ-ゖ]{{1,4}})$")


@dataclass(frozen=True)
class Lexicon:
    """Names known from the data: people to mask, and words never to mask."""

    people: frozenset[str] = frozenset()  # "石原 修" (surname, a space, given name)
    keep: frozenset[str] = frozenset()  # customer names and aliases, staff names


def person_name(value: str | None) -> str | None:
    """``value`` when it looks like a person's name ("石原 修"), else None ("倉庫当番", "フロント")."""
    if not value:
        return None
    v = re.sub(r"[（(].*?[）)]", "", str(value)).strip()
    return v if _FULL_NAME.match(v) else None


@lru_cache(maxsize=64)
def _compiled(people: frozenset[str]) -> tuple[re.Pattern | None, re.Pattern | None]:
    fulls, surnames = [], set()
    for p in people:
        m = _FULL_NAME.match(p)
        if not m:
            continue
        fulls.append(re.escape(m.group(1)) + r"[ 　]?" + re.escape(m.group(2)))
        surnames.add(re.escape(m.group(1)))
    if not fulls:
        return None, None
    full = re.compile("|".join(sorted(fulls, key=len, reverse=True)))
    sur = re.compile(rf"(?:{'|'.join(sorted(surnames, key=len, reverse=True))})(?={_TITLES})")
    return full, sur


def _phone_ok(s: str) -> bool:
    digits = re.sub(r"\D", "", s)
    if s.lstrip().startswith(("+", "＋")):
        digits = "0" + digits[2:].lstrip("0０")
    return 10 <= len(digits) <= 11


def find(text: str, lexicon: Lexicon | None = None) -> list[tuple[int, int, str]]:
    """Spans of personal data in ``text``: (start, end, kind), kind in phone/email/address/name."""
    if not text:
        return []
    lex = lexicon or Lexicon()
    spans: list[tuple[int, int, str]] = []
    spans += [(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    spans += [(m.start(), m.end(), "phone") for m in _PHONE.finditer(text) if _phone_ok(m.group())]
    spans += [(m.start(), m.end(), "address") for p in (_POSTAL, _ADDRESS) for m in p.finditer(text)]
    for m in _HONORIFIC.finditer(text):
        name, start = m.group(1), m.start(1)
        first, _, rest = name.partition(" ") if " " in name else name.partition("　")
        if rest and (first.endswith(_ROLE_WORDS) or first in lex.keep):  # 担当 森様: the name is the last part
            name, start = rest, m.end(1) - len(rest)
        if m.group(2) == "様" and name[-1] in _NOT_NAME_END:
            continue
        if name[-1] in "皆客奥" or name.endswith(_ROLE_WORDS) or name in lex.keep or name + m.group(2) in lex.keep \
                or any(name.endswith(k) for k in lex.keep if len(k) >= 2):
            continue
        spans.append((start, m.end(1), "name"))
    full, sur = _compiled(lex.people)
    if full is not None:
        spans += [(m.start(), m.end(), "name") for m in full.finditer(text)]
        spans += [(m.start(), m.end(), "name") for m in sur.finditer(text)]
    return _merge(spans)


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


def mask_text(text: str) -> str:
    """Mask with the patterns alone (no lexicon): for logs and anything stored about a query."""
    return mask(text)[0]
