from bot.text import TextProcessor, normalize, split_passage, to_katakana


def test_normalize_folds_width_case_and_spaces() -> None:
    assert normalize("  ｶｽﾊﾗ　ＡＢＣ  ？ ") == "カスハラ abc ?"


def test_synonyms_fold_longest_first() -> None:
    text = TextProcessor([["カスタマーハラスメント", "カスハラ"], ["申込完了メール", "確認メール"], ["メール", "Eメール"]])
    assert text.fold("ｶｽﾊﾗの確認メールとＥメール") == "カスタマーハラスメントの申込完了メールとメール"


def test_tokens_are_content_lemmas_without_particles() -> None:
    text = TextProcessor()
    tokens = text.tokens("セミナーに申し込みました。")
    assert "セミナー" in tokens and "申し込む" in tokens
    assert "に" not in tokens and "。" not in tokens and "ます" not in tokens


def test_unknown_words_keep_their_surface() -> None:
    assert "zoom" in TextProcessor().tokens("Zoomで参加")


def test_hiragana_and_kanji_meet_in_the_reading() -> None:
    text = TextProcessor()
    hiragana = set(text.reading_grams("しりょうはもらえますか"))
    kanji = set(text.reading_grams("資料はもらえますか"))
    assert {"シリ", "リョ", "ョウ"} <= hiragana & kanji


def test_split_passage_groups_sentences() -> None:
    text = "一文目です。二文目です。\n三文目はとても長い文章です。"
    assert split_passage(text, 12) == ["一文目です。二文目です。", "三文目はとても長い文章です。"]
    assert split_passage(text, 1000) == [text.replace("\n", "")]
    assert split_passage("", 10) == []


def test_to_katakana() -> None:
    assert to_katakana("せみなー Zoom") == "セミナー Zoom"


def test_kana_spelling_spells_only_kanji_words_in_hiragana() -> None:
    text = TextProcessor([["カスハラ", "カスタマーハラスメント"]])
    assert text.kana_spelling("専門家はどのように決まりますか？") == "せんもんかはどのようにきまりますか?"
    assert text.kana_spelling("カスタマーハラスメントの資料 Zoom 5回") == "カスハラのしりょう zoom 5かい"
    assert text.kana_spelling("せみなーはいつ") == "せみなーはいつ"
