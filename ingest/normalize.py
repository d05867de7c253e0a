"""Japanese text normalization shared by ingest, the lexical analyzer and queries.

One function, :func:`normalize`, is applied to every stored chunk and every query so
that the dense and the lexical side see the same text: NFKC (full/half width, ｶﾀｶﾅ →
カタカナ, ＭＸ－３１００ → MX-3100), one kind of wave dash and long-vowel mark,
collapsed whitespace. :func:`fold_for_lexical` goes further for matching only (it is
never shown to users): it lower-cases and drops the word-final long-vowel mark of katakana words, so
that プリンター and プリンタ, サーバー and サーバ match.
"""

from __future__ import annotations

import re
import unicodedata

# Characters that NFKC leaves alone but users type interchangeably.
_CHAR_MAP = str.maketrans(
    {
        "〜": "~",  # wave dash
        "～": "~",
        "－": "-",
        "‐": "-",
        "‑": "-",
        "–": "-",
        "—": "-",
        "―": "-",
        "−": "-",
        "ｰ": "ー",
        "﹣": "-",
        "\u3000": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)
_WS = re.compile(r"[ \t\r\f\v]+")
_MANY_NL = re.compile(r"\n{3,}")
# A hyphen-like mark right after a katakana character is a long-vowel mark typed wrong.
_KATAKANA_DASH = re.compile(r"(?<=[\u30a1-\u30fa])[-~](?=[\u30a1-\u30fa]|$|[^0-9A-Za-z])")
_FINAL_LONG_VOWEL = re.compile(r"(?<=[\u30a1-\u30fc][\u30a1-\u30fa])ー(?![\u30a1-\u30fc])")


def normalize(text: str) -> str:
    """Canonical form of user-visible text (stored chunks and queries)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).translate(_CHAR_MAP)
    text = _KATAKANA_DASH.sub("ー", text)
    text = _WS.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NL.sub("\n\n", text).strip()


def fold_for_lexical(text: str) -> str:
    """Fold case and spelling variants that should match each other; input must be normalized."""
    return _FINAL_LONG_VOWEL.sub("", text.lower())
