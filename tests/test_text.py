"""Japanese text handling: normalization, encodings, sentences, chunking, lexical tokens."""

import pytest

from hikitsugi.index.lexical import tokenize
from hikitsugi.ingest.encoding import DecodeError, decode_bytes
from hikitsugi.ingest.model import Block
from hikitsugi.ingest.normalize import fold_for_lexical, normalize
from hikitsugi.ingest.sentences import chunk_blocks, split_sentences
from hikitsugi.search.highlight import snippet


def test_normalize_width_and_variants():
    assert normalize("ＭＸ－３１００の ﾌﾟﾘﾝﾀｰ　が") == "MX-3100の プリンター が"
    assert fold_for_lexical(normalize("プリンター")) == fold_for_lexical(normalize("プリンタ"))
    assert fold_for_lexical(normalize("サーバ－")) == "サーバ"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932", "euc_jp"])
def test_decode_japanese_encodings_without_mojibake(encoding):
    text = "受付番号,顧客名\nINC-1,株式会社青葉物流 紙詰まり ｶﾅ\n"
    if encoding == "cp932":
        text += "髙橋様 ①番トレイ ～\n"
    assert decode_bytes(text.encode(encoding)).text == text


def test_binary_is_refused():
    with pytest.raises(DecodeError):
        decode_bytes(b"\x00\x01\x02PK\x03\x04" * 100)


def test_sentences_do_not_split_inside_quotes():
    s = split_sentences("お客様は「もう使えない。返金して！」と言った。再起動で解決。")
    assert s == ["お客様は「もう使えない。返金して！」と言った。", "再起動で解決。"]


def test_chunks_keep_headings_respect_limit_and_table_rows():
    long = "。".join(f"手順{i}を実行します" for i in range(60)) + "。"
    blocks = [Block(long, ("MX-3100", "紙詰まり")), Block("エラー | 意味 | 対処", ("MX-3100", "エラー表"), table_row=True)]
    chunks = chunk_blocks(blocks, max_chars=200)
    assert all(len(c.text) <= 230 for c in chunks)
    assert chunks[0].headings == ("MX-3100", "紙詰まり")
    assert chunks[-1].text == "エラー | 意味 | 対処" and chunks[-1].context == "MX-3100 > エラー表"
    assert all(c.text.endswith("。") for c in chunks[:-1])  # never cut mid-sentence


def test_lexical_tokens_match_across_width_and_long_vowel():
    a = set(tokenize(normalize("ﾌﾟﾘﾝﾀｰ")))
    b = set(tokenize(normalize("プリンタ")))
    assert a == b


def test_snippet_highlights_and_escapes():
    out = snippet("<b>複合機</b>で紙詰まりが発生", "紙詰まり")
    assert "<mark>紙詰まり</mark>" in out and "&lt;b&gt;" in out
