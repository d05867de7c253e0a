"""Queries typed without kanji conversion (hiragana, romaji) find what their kanji form finds."""

from __future__ import annotations

import pytest

from hikitsugi.index import readings as rd


def test_phonetic_folds_what_people_type_interchangeably():
    key = rd.phonetic
    assert key("バンゴウ") == key("バンゴー") == key("バンゴ")
    assert key("レシート") == key("レシイト") == key(rd.to_katakana("れしーと"))
    assert key("インヴォイス") == key("インボイス")
    assert key("カミヅマリ") == key("カミズマリ")
    assert key("ゼイリツ") != key("ザイコ")


@pytest.mark.parametrize("query,kana", [("zaiko mainasu", "ざいこ まいなす"), ("bangou", "ばんごう"),
                                        ("kitte", "きって"), ("printer", None), ("error", None), ("pc", None),
                                        ("MX-3100", None)])
def test_romaji_is_recognized_and_english_is_not(query, kana):
    assert rd.romaji_to_kana(query) == kana


@pytest.mark.parametrize("query,typed", [("ざいこ まいなす", True), ("zaiko mainasu", True), ("かみづまり", True),
                                         ("在庫がマイナス", False), ("ｴﾗｰ E-21", False), ("トナー交換", False)])
def test_reading_queries_are_detected(query, typed):
    from hikitsugi.ingest.normalize import normalize

    assert rd.is_reading_query(normalize(query)) is typed


@pytest.mark.parametrize("analyzer", rd.ANALYZERS)
def test_corpus_words_rewrite_a_kana_query(analyzer):
    r = rd.Readings.build(["在庫がマイナスになっている", "インボイス番号がレシートに出ない", "複合機が固まった",
                           "紙詰まりが頻発する"], analyzer, 1.2, 0.75)
    assert r.to_surface("ざいこ まいなす") == "在庫 マイナス"
    assert r.to_surface("zaiko mainasu") == "在庫 マイナス"
    assert r.to_surface("いんぼいす ばんごう れしーと") == "インボイス 番号 レシート"
    assert r.to_surface("かたまった") == "固まった"
    assert r.to_surface("ほげほげ") is None  # nothing known: the query stays as typed
    # the reading field matches the kana query to the kanji text
    scores = r.index.scores(rd.tokens(rd.query_reading("ざいこ まいなす", analyzer)))
    assert int(scores.argmax()) == 0 and scores[0] > 0


def test_hiragana_and_romaji_queries_find_the_kanji_passage(make_home, tmp_path):
    """End to end through ingest and the product's search, every mode."""
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    (tmp_path / "pos.md").write_text(
        "# レジの困りごと\n\n## 在庫がマイナス\n\n売上の取り消しを二重に登録すると在庫数がマイナスになります。棚卸しで修正してください。\n\n"
        "## テイクアウトの税率\n\n持ち帰りの注文は軽減税率8%で計算されます。店内飲食は10%です。\n\n"
        "## インボイス番号\n\n登録番号はレシートの店舗情報に印字されます。\n", encoding="utf-8")
    make_home("readings-home")
    settings = get_settings()
    ingest_paths([tmp_path / "pos.md"], settings)
    for query, expected in [("ざいこ まいなす", "在庫"), ("zaiko mainasu", "在庫"), ("ていくあうと ぜいりつ", "税率"),
                            ("いんぼいす ばんごう れしーと", "登録番号")]:
        for mode in ("lexical", "hybrid"):
            top = search(query, settings, k=3, mode=mode).results[0]
            assert expected in top.passage, (query, mode, top.passage)


def test_a_rebuild_reuses_stored_analyses_row_by_row(tmp_path, monkeypatch):
    """The per-row analyses go to an SQLite row store saved with the generation; the next
    build reads them back one row at a time instead of analyzing again (or loading them all)."""
    texts = ["在庫がマイナスになっている", "インボイス番号がレシートに出ない", "複合機が固まった"]
    first = rd.Readings.build(texts, "sudachi", 1.2, 0.75, keys=[11, 12, 13])
    first.save(tmp_path / "gen1")
    stored = rd.Readings.load_rows(tmp_path / "gen1", "sudachi")
    assert isinstance(stored, rd.RowStore) and stored.get(12)[0] and stored.get(99) is None
    analyzed: list[str] = []
    real = rd.analyze
    monkeypatch.setattr(rd, "analyze", lambda text, name: analyzed.append(text) or real(text, name))
    second = rd.Readings.build(texts + ["紙詰まりが頻発する"], "sudachi", 1.2, 0.75, keys=[11, 12, 13, 14],
                               previous=stored)
    assert analyzed == ["紙詰まりが頻発する"]  # only the new row
    assert second.vocab.items() >= first.vocab.items()
    q = rd.tokens(rd.query_reading("ざいこ まいなす", "sudachi"))
    assert int(second.index.scores(q).argmax()) == int(first.index.scores(q).argmax()) == 0  # the reused row matches
    assert rd.Readings.load_rows(tmp_path / "gen1", "fugashi") == {}  # another analyzer's rows are not reused


def test_kana_kanji_conversion_writes_words_the_corpus_never_used():
    from hikitsugi.index.kana_kanji import convert

    assert convert("とりこんだしょるいをでんしゆうびんでとばしても") == "取り込んだ書類を電子郵便で飛ばしても"
    assert convert("ひかりさん どようにこわれたら") == "光さん 土曜に壊れたら"  # parts stay parts
    assert convert("PCがのぞける MX-3100のかみ").startswith("PCが覗ける MX-3100の")  # Latin runs stay as typed
    # katakana stays as typed and the particle after it stays a particle (not 「ファクス我」「パスワードヲ」)
    assert convert("ファクスがとどかない") == "ファクスが届かない"
    assert convert("パスワードをわすれた") == "パスワードを忘れた"
    assert convert("zaiko") == "zaiko"  # romaji is turned into kana before, by the caller
    r = rd.Readings.build(["在庫がマイナスになっている"], "sudachi", 1.2, 0.75)
    assert r.rewrite("zaiko mainasu") == r.rewrite("ざいこ まいなす") == "在庫 マイナス"
    with pytest.raises(ValueError, match="reading_converter"):
        r.rewrite("ざいこ", "ime")


# Paraphrases typed in hiragana (support-ja-kana q131, q007, q074): none of their words is in the
# corpus vocabulary, so only a real kana-kanji conversion gives the dense side something to read.
@pytest.mark.parametrize("kana,kanji", [
    ("よそのぎょうしゃにのりかえたいのでとりひきをおわりにしたい", "よその業者に乗り換えたいので取引を終わりにしたい"),
    ("ねんがじょうみたいなかたいかーどをとおすとよれよれででてこない", "年賀状みたいな硬いカードを通すとよれよれで出てこない"),
    ("いえからしょくばのしくみにいれなくなった かぎのきじつがすぎたとか", "家から職場の仕組みに入れなくなった、鍵の期日が過ぎたとか"),
], ids=["q131", "q007", "q074"])
@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_a_kana_paraphrase_finds_what_its_kanji_form_finds(use_home, kana, kanji, mode):
    from hikitsugi.search.service import search

    best = search(kanji, use_home, k=1, mode=mode).results[0]
    found = [{r.source_id, *r.similar_ids} for r in search(kana, use_home, k=3, mode=mode).results]
    assert any(best.source_id in card for card in found), (kana, best.source_id, found)
