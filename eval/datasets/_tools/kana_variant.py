#!/usr/bin/env python3
"""Write the hiragana (or romaji) form of a labeled query set: same ids, same labels.

    python eval/datasets/_tools/kana_variant.py eval/datasets/support-ja eval/datasets/support-ja-kana
    python eval/datasets/_tools/kana_variant.py SRC DST --romaji

Each query is rewritten the way an agent types it when they skip the IME's kanji
conversion: every word in hiragana (katakana words too), Latin letters and digits as
typed. A reading is taken where SudachiPy and fugashi + UniDic agree on the whole query
(then neither analyzer the product can index readings with is favoured); where they
disagree, pykakasi's — a third, independent dictionary — is used. A dev tool
(``pip install pykakasi``); pykakasi is not a dependency of the product.
Queries without kanji or katakana are left out (they already are in reading form).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import unicodedata
from pathlib import Path

KANJI_OR_KATAKANA = re.compile(r"[\u3400-\u9fff\u30a1-\u30fa々]")


def _analyzer_reading(text: str, name: str) -> str:
    from hikitsugi.index.readings import analyzer

    out = []
    for m in analyzer(name)(text):
        if m is None:
            out.append(" ")
            continue
        surface, reading, _ = m
        if re.fullmatch(r"[0-9A-Za-z.\-_/]+", surface) or not re.fullmatch(r"[\u30a1-\u30fc]+", reading or ""):
            out.append(surface)
        else:
            out.append("".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in reading))
    return re.sub(r" +", " ", "".join(out)).strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--romaji", action="store_true", help="Hepburn romaji instead of hiragana")
    args = ap.parse_args()
    import pykakasi

    kks = pykakasi.kakasi()
    src, dst = args.src.resolve(), args.dst.resolve()
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "qrels").mkdir(exist_ok=True)
    shutil.copy(src / "qrels" / "test.tsv", dst / "qrels" / "test.tsv")
    spec = (src / "dataset.yaml").read_text(encoding="utf-8")
    ingest = re.search(r"ingest: \[(.*?)\]", spec).group(1)
    rel = Path("..") / src.name / ingest if not ingest.startswith("/") else Path(ingest)
    form = "romaji" if args.romaji else "hiragana"
    spec = {"ingest": [str(rel)],
            "description": f"{src.name} の各クエリを漢字変換せずに{'ローマ字' if args.romaji else 'ひらがな'}で打った形"
                           f"（{form}、同じ id と関連度ラベル）。生成は eval/datasets/_tools/kana_variant.py",
            "kanji_form": f"../{src.name}"}
    import yaml

    (dst / "dataset.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    n = 0
    with (src / "queries.jsonl").open(encoding="utf-8") as fin, \
            (dst / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as fout:
        for line in fin:
            if not line.strip():
                continue
            q = json.loads(line)
            if not KANJI_OR_KATAKANA.search(q["text"]):
                continue
            source = unicodedata.normalize("NFKC", q["text"])
            a, b = _analyzer_reading(source, "sudachi"), _analyzer_reading(source, "fugashi")
            hira = a if a == b else "".join(p["hira"] for p in kks.convert(source))
            if args.romaji:
                text = " ".join(p["hepburn"] for p in kks.convert(hira) if p["hepburn"].strip())
            else:
                text = hira
            text = re.sub(r"\s+", " ", re.sub(r"[、。，．！？!?「」『』（）()・]", " ", text)).strip()
            fout.write(json.dumps({**q, "text": text, "kanji_form": q["text"]}, ensure_ascii=False) + "\n")
            n += 1
    print(f"{dst}: {n} queries in {form}", file=sys.stderr)


if __name__ == "__main__":
    main()
