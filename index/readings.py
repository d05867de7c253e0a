"""Readings: what a text sounds like, so a query typed without kanji conversion still matches.

Agents type 「ざいこ まいなす」 or 「zaiko mainasu」 when they skip the IME conversion. The
surface analyzer (character n-grams) cannot match that to 「在庫がマイナス」, and the
dense model reads hiragana poorly. So every chunk also gets its *reading* — the kana of
each word, from a morphological analyzer with a dictionary installed from PyPI — indexed
as its own BM25 field over kana bigrams; a query is turned into its reading the same
way (kana stays kana, romaji is converted first) and matched against that field.

Both sides pass through :func:`phonetic`, which folds what people type interchangeably:
long vowels (レシート / れしいと / れしと, ばんごう / ばんご), ヴ (インヴォイス = インボイス),
ヂ/ヅ (かみづまり = かみずまり). Digits and Latin letters stay as they are (a model number
read aloud helps no one).

The same analysis also yields a small reading → word vocabulary of the corpus (the
words as they are written in *this* corpus, most frequent first), which
:func:`to_surface` uses to write a kana query back in the corpus' own kanji — a
corpus-driven IME — so the dense side can embed 「在庫 マイナス」 instead of
「ざいこ まいなす」.

That vocabulary only knows this corpus' words; a query phrased otherwise is converted
by a real kana-kanji converter instead (index.kana_kanji, the Mozc dictionary), which
measured better on the dev sets (``reading_converter`` setting, :meth:`Readings.rewrite`).

The analyzer (``reading_analyzer`` setting: ``sudachi`` or ``fugashi``) was chosen by
measurement in docs/retrieval.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hikitsugi.index import kana_kanji
from hikitsugi.index.lexical import LexicalIndex

ANALYZERS = ("sudachi", "fugashi")
MIN_WORD = 2  # shortest corpus word (in kana) used to rewrite a query; 2 beat 3 and 4 on support-ja-kana (docs/retrieval.md)
_KANJI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff々〆ヵヶ]")
_HIRA = re.compile(r"[\u3041-\u3096]+")
_HIRA_WORD = re.compile(r"[\u3041-\u3096ー]+")  # hiragana as typed, long-vowel marks included
_KANA_RUN = re.compile(r"[\u30a1-\u30fc]+|[0-9a-z]+")
# A word made only of romaji syllables: (consonant[s]) + vowel, ん, or a doubled consonant (っ).
_ROMAJI_WORD = re.compile(r"^(?:(?:ch|sh|ts|[kgsztdnhbpmrfjvwy])?y?[aiueo]|n(?![aiueoy])|([kgstdhbpmrfjcz])(?=\1))+$")
_VOWEL_ROWS = {
    "ア": "アカサタナハマヤラワガザダバパァャヮ", "イ": "イキシチニヒミリギジヂビピィ",
    "ウ": "ウクスツヌフムユルグズヅブプゥュ", "エ": "エケセテネヘメレゲゼデベペェ",
    "オ": "オコソトノホモヨロヲゴゾドボポォョ",
}
_VOWEL_OF = {k: v for v, ks in _VOWEL_ROWS.items() for k in ks}
_FOLD = str.maketrans({"ヂ": "ジ", "ヅ": "ズ", "ヲ": "オ", "ヮ": "ワ", "ヵ": "カ", "ヶ": "ケ"})
_VU_MAP = {"ァ": "バ", "ィ": "ビ", "": "ブ", "ゥ": "ブ", "ェ": "ベ", "ォ": "ボ"}


def to_katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def phonetic(kana: str) -> str:
    """Fold a katakana string to the key both sides are matched on (see module docstring)."""
    return phonetic_map(kana)[0]


def phonetic_map(kana: str) -> tuple[str, list[int]]:
    """:func:`phonetic`, with the position in ``kana`` each character of the key came from."""
    s = kana.translate(_FOLD)
    out: list[str] = []
    pos: list[int] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "ヴ":
            nxt = s[i + 1] if i + 1 < len(s) and s[i + 1] in "ァィゥェォ" else ""
            out.append(_VU_MAP[nxt])
            pos.append(i)
            i += 1 + len(nxt)
            continue
        if ch == "ー":
            i += 1
            continue
        if out and ch in "アイウエオ":
            prev = _VOWEL_OF.get(out[-1])
            if prev == ch or (ch == "ウ" and prev == "オ") or (ch == "イ" and prev == "エ"):
                i += 1
                continue  # a long vowel spelled out: コウ = コー = コ, セイ = セー
        out.append(ch)
        pos.append(i)
        i += 1
    return "".join(out), pos


# --------------------------------------------------------------------------- analyzers
# Each returns, for a normalized text, its morphemes as (surface, katakana reading, content word?,
# dictionary form as the dictionary writes it — 「すりへっ」 -> 「擦り減る」), with None for a
# boundary (punctuation, spaces).
Morphemes = list[tuple[str, str, bool, str] | None]


def _sudachi() -> Callable[[str], Morphemes]:
    from sudachipy import dictionary, tokenizer

    mode = tokenizer.Tokenizer.SplitMode.A  # short units: 在庫/管理, so ざいこかんり is found from its parts
    tok = dictionary.Dictionary().tokenizer(mode)
    lock = threading.Lock()  # a SudachiPy tokenizer is not safe to share between threads
    content = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "代名詞"}

    def run(text: str) -> Morphemes:
        out: Morphemes = []
        with lock:
            ms = tok.tokenize(text[:20000])
            for m in ms:
                pos = m.part_of_speech()[0]
                if pos in ("補助記号", "空白"):
                    out.append(None)
                    continue
                out.append((m.surface(), m.reading_form(), pos in content, m.normalized_form()))
        return out
    return run


def _fugashi() -> Callable[[str], Morphemes]:
    import fugashi

    tagger = fugashi.Tagger()  # unidic-lite, found by fugashi without configuration
    lock = threading.Lock()
    content = {"名詞", "動詞", "形容詞", "形状詞", "副詞", "代名詞"}

    def run(text: str) -> Morphemes:
        out: Morphemes = []
        with lock:
            for w in tagger(text[:20000]):
                pos = w.feature.pos1
                if pos in ("補助記号", "空白"):
                    out.append(None)
                    continue
                kana = getattr(w.feature, "kana", None)
                lemma = getattr(w.feature, "lemma", None)
                out.append((w.surface, kana if kana and kana != "*" else w.surface, pos in content,
                            lemma.split("-")[0] if lemma and lemma != "*" else w.surface))
        return out
    return run


@lru_cache(maxsize=2)
def analyzer(name: str) -> Callable[[str], Morphemes]:
    """The morphological analyzer ``name`` (loaded once per process; dictionaries come from PyPI)."""
    if name == "sudachi":
        return _sudachi()
    if name == "fugashi":
        return _fugashi()
    raise ValueError(f"reading_analyzer must be one of {', '.join(ANALYZERS)} (got {name!r})")


def _word_key(surface: str, reading: str) -> str:
    """The phonetic key of one morpheme; Latin letters and digits keep their spelling."""
    if re.fullmatch(r"[0-9A-Za-z.\-_/]+", surface):
        return surface.lower()
    kana = to_katakana(reading)
    if not re.fullmatch(r"[\u30a1-\u30fc]+", kana):
        kana = to_katakana(surface)
    return phonetic(kana)


def analyze(text: str, name: str) -> tuple[str, list[tuple[str, str]]]:
    """(the text's reading: phonetic keys, words joined, boundaries as spaces;
    its content words as (phonetic key, surface) pairs)."""
    parts: list[str] = []
    words: list[tuple[str, str]] = []
    for m in analyzer(name)(text):
        if m is None:
            parts.append(" ")
            continue
        surface, reading, is_content, _ = m
        key = _word_key(surface, reading)
        parts.append(key)
        if is_content and key and not _HIRA.fullmatch(surface) and len(key) >= 2:
            words.append((key, surface))
    return re.sub(r" +", " ", "".join(parts)).strip(), words


def tokens(reading: str) -> list[str]:
    """What the reading field indexes: kana bigrams and Latin/digit runs of a reading."""
    out: list[str] = []
    for run in _KANA_RUN.findall(reading):
        if run[0].isascii():
            out.append(run)
        elif len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return out


# --------------------------------------------------------------------------- queries
def romaji_to_kana(query: str) -> str | None:
    """The hiragana of a query typed in romaji (「zaiko mainasu」), or None when it is not
    romaji (a word that does not convert completely: 'printer', 'error')."""
    import jaconv

    words = query.lower().split()
    if not words or not all(_ROMAJI_WORD.match(w) for w in words):
        return None
    kana = [jaconv.alphabet2kana(w) for w in words]
    if any(re.search(r"[a-z]", k) for k in kana):
        return None
    return " ".join(kana)


def is_reading_query(query_norm: str) -> bool:
    """A query typed without kanji conversion: no kanji, and mostly hiragana or romaji."""
    if _KANJI.search(query_norm):
        return False
    if romaji_to_kana(query_norm):
        return True
    letters = [c for c in query_norm if not c.isspace()]
    return bool(letters) and sum(1 for c in letters if _HIRA.fullmatch(c)) >= 0.6 * len(letters)


def query_reading(query_norm: str, name: str) -> str:
    """The reading of a query (romaji converted to kana first)."""
    return analyze(romaji_to_kana(query_norm) or query_norm, name)[0]


class RowStore:
    """Per-row analyses (chunk id → reading, words) of one generation in an SQLite file, so
    the next build reuses them row by row without loading them all (at 1,000,000 chunks the
    analyses are several GiB as Python objects)."""

    FILE = "rows.sqlite"

    def __init__(self, path: Path, writable: bool = False) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path) if writable else f"file:{path}?mode=ro", uri=not writable,
                                   check_same_thread=False)
        self._batch: list[tuple[int, str, str]] = []

    @classmethod
    def create(cls) -> "RowStore":
        fd, name = tempfile.mkstemp(prefix="hikitsugi-readings-", suffix=".sqlite")
        os.close(fd)
        store = cls(Path(name), writable=True)
        store._db.execute("PRAGMA journal_mode=OFF")
        store._db.execute("PRAGMA synchronous=OFF")
        store._db.execute("CREATE TABLE rows (key INTEGER PRIMARY KEY, reading TEXT, words TEXT)")
        return store

    def add(self, key: int, reading: str, words: list) -> None:
        self._batch.append((int(key), reading, json.dumps(words, ensure_ascii=False)))
        if len(self._batch) >= 5000:
            self._flush()

    def _flush(self) -> None:
        if self._batch:
            self._db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)", self._batch)
            self._batch = []

    def close(self) -> Path:
        self._flush()
        self._db.commit()
        self._db.close()
        return self.path

    def discard(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)

    def get(self, key: int) -> tuple[str, list] | None:
        row = self._db.execute("SELECT reading, words FROM rows WHERE key = ?", (int(key),)).fetchone()
        return None if row is None else (row[0], [tuple(w) for w in json.loads(row[1])])


# --------------------------------------------------------------------------- the field
@dataclass
class Readings:
    """The reading field of one index generation: BM25 over reading tokens, row for row
    with the chunk rows, and the corpus' reading → written-word vocabulary."""

    index: LexicalIndex
    vocab: dict[str, str]  # phonetic key -> the word as this corpus most often writes it
    analyzer: str
    rows_file: Path | None = field(default=None, repr=False)  # this build's per-row analyses (see RowStore)

    @classmethod
    def build(cls, texts: Iterable[str], name: str, k1: float, b: float, keys: list[int] | None = None,
              previous: "RowStore | dict | None" = None) -> "Readings":
        """The field over ``texts`` (in row order). ``keys`` name the rows (chunk ids, which
        never change text) and ``previous`` holds the analyses of an earlier generation under
        the same keys: those rows are not analyzed again — at 100,000 chunks the analysis is
        most of a generation's build time.

        Streamed, so memory does not grow with the corpus: each text is analyzed, its row
        written to an SQLite file (:class:`RowStore`, the next build's ``previous``) and its
        reading tokens handed to the lean BM25 builder; only the reading → word vocabulary
        is kept. Holding every row's analysis and token list in lists (the first version)
        took 5.7 GiB of build memory at 100,000 chunks and would not have fit at 1,000,000."""
        seen: dict[str, Counter] = {}
        writer = RowStore.create() if keys is not None else None

        def token_rows():
            for i, text in enumerate(texts):
                key = keys[i] if keys is not None else None
                found = previous.get(key) if previous is not None and key is not None else None
                reading, words = found if found is not None else analyze(text, name)
                for wkey, surface in words:
                    seen.setdefault(wkey, Counter())[surface] += 1
                if writer is not None:
                    writer.add(key, reading, words)
                yield tokens(reading)

        try:
            index = LexicalIndex.from_tokens(token_rows(), k1, b)
        except BaseException:
            if writer is not None:
                writer.discard()
            raise
        vocab = {k: c.most_common(1)[0][0] for k, c in seen.items()}
        out = cls(index, vocab, name, writer.close() if writer is not None else None)
        if out.rows_file is not None:  # a build that is never saved leaves no temporary file behind
            weakref.finalize(out, out.rows_file.unlink, missing_ok=True)
        return out

    def save(self, directory: Path, dense_share: float = 0.0, dense_min_rows: int = 0) -> None:
        self.index.save(directory / "bm25", dense_share, dense_min_rows)
        (directory / "vocab.json").write_text(json.dumps({"analyzer": self.analyzer, "vocab": self.vocab},
                                                         ensure_ascii=False))
        if self.rows_file is not None and self.rows_file.exists():
            shutil.move(str(self.rows_file), directory / RowStore.FILE)
            self.rows_file = None

    @staticmethod
    def load_rows(directory: Path, analyzer_name: str) -> "RowStore | dict":
        """The per-row analyses a generation stored (empty when it was made by another analyzer)."""
        try:
            meta = json.loads((directory / "vocab.json").read_text())
            if meta.get("analyzer") != analyzer_name:
                return {}
            if (directory / RowStore.FILE).exists():
                return RowStore(directory / RowStore.FILE)
            out = {}  # a generation written before the row store: its rows.jsonl
            with (directory / "rows.jsonl").open(encoding="utf-8") as fh:
                for line in fh:
                    key, reading, words = json.loads(line)
                    out[key] = (reading, [tuple(w) for w in words])
            return out
        except (OSError, ValueError, sqlite3.Error):
            return {}

    @classmethod
    def load(cls, directory: Path) -> "Readings | None":
        if not (directory / "vocab.json").exists():
            return None  # a generation built before readings existed: search works without them
        meta = json.loads((directory / "vocab.json").read_text())
        return cls(LexicalIndex.load(directory / "bm25"), meta["vocab"], meta["analyzer"])

    def rewrite(self, query_norm: str, converter: str = "mozc") -> str | None:
        """What the dense side embeds for a query typed in kana or romaji, or None when it
        stays as typed: a kana-kanji conversion with the Mozc dictionary (``mozc``,
        index.kana_kanji) or the corpus' own words (``corpus``, :meth:`to_surface`); the
        ``reading_converter`` setting, chosen by measurement in docs/retrieval.md."""
        if converter == "corpus":
            return self.to_surface(query_norm)
        if converter != "mozc":
            raise ValueError(f"reading_converter must be one of {', '.join(kana_kanji.CONVERTERS)} (got {converter!r})")
        text = kana_kanji.convert(romaji_to_kana(query_norm) or query_norm)
        return text if text != query_norm else None

    def to_surface(self, query_norm: str) -> str | None:
        """A kana (or romaji) query written in words — 「ざいこ まいなす」 → 「在庫 マイナス」 —
        or None when no word of it could be written otherwise.

        Each space-separated part is split into readings of this corpus' words by dynamic
        programming (most kana covered by words of at least ``MIN_WORD`` kana, then fewest
        pieces) and each such piece is written as the corpus writes it; the stretches the
        corpus does not explain go to the analyzer, whose dictionary writes their nouns as
        usual (「しょるい」 → 「書類」). Particles and endings stay as typed."""
        query = romaji_to_kana(query_norm) or query_norm
        out = []
        for part in query.split():
            kata = to_katakana(part)
            key, pos = phonetic_map(kata)
            if not key or not _HIRA_WORD.fullmatch(part) or not re.fullmatch(r"[\u30a1-\u30fc]+", key):
                out.append(part)
                continue
            words: list[str] = []
            start = 0  # start (in part) of the stretch no corpus word explains yet
            i = 0
            for piece in self._segment(key):
                j = i + len(piece)
                if piece in self.vocab and len(piece) >= MIN_WORD:
                    lo, hi = pos[i], (pos[j] if j < len(pos) else len(part))
                    if lo > start:
                        words.append(self._by_dictionary(part[start:lo]))
                    words.append(self.vocab[piece])
                    start = hi
                i = j
            if start < len(part):
                words.append(self._by_dictionary(part[start:]))
            out.append("".join(words))
        text = " ".join(out)
        return text if text != query else None

    def _by_dictionary(self, kana: str) -> str:
        """Hiragana the corpus has no word for, with its nouns as the dictionary writes them."""
        out = []
        for m in _nouns(kana):
            out.append(m)
        return "".join(out)

    def _segment(self, key: str) -> list[str]:
        n = len(key)
        # best[i] = (covered chars, -pieces, pieces) for key[:i]
        best: list[tuple[int, int, list[str]] | None] = [None] * (n + 1)
        best[0] = (0, 0, [])
        for i in range(n):
            if best[i] is None:
                continue
            cov, neg, pieces = best[i]
            for j in range(i + 1, min(n, i + 16) + 1):
                piece = key[i:j]
                known = piece in self.vocab and len(piece) >= MIN_WORD
                if not known and j > i + 1:
                    continue
                cand = (cov + (len(piece) if known else 0), neg - (1 if known else 0), pieces + [piece])
                if best[j] is None or cand[:2] > best[j][:2]:
                    best[j] = cand
        return best[n][2] if best[n] else [key]


@lru_cache(maxsize=1)
def _noun_tokenizer():
    from sudachipy import dictionary, tokenizer

    return dictionary.Dictionary().tokenizer(tokenizer.Tokenizer.SplitMode.C), threading.Lock()


def _nouns(kana: str) -> list[str]:
    """Hiragana split by SudachiPy (long units), each common noun written in its dictionary form."""
    tok, lock = _noun_tokenizer()
    out = []
    with lock:
        for m in tok.tokenize(kana):
            pos = m.part_of_speech()
            lemma = m.normalized_form()
            is_noun = pos[0] == "名詞" and pos[1] == "普通名詞"  # a proper noun from kana is a guess: かみ -> 嘉美
            out.append(lemma if is_noun and len(m.surface()) >= 2 and not _HIRA.fullmatch(lemma) else m.surface())
    return out
