from bot.text import KanaRespeller, TextProcessor, normalize, split_passage, to_katakana


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


def test_spellings_map_readings_to_the_corpus_words_and_compounds() -> None:
    spellings = TextProcessor().spellings(["派遣される専門家はどのように決まりますか。", "セミナーはオンラインで開催します。"])
    assert spellings["せんもんか"] == "専門家"  # noun + suffix, one compound
    assert spellings["はけん"] == "派遣"
    assert spellings["せみなー"] == "セミナー" and spellings["おんらいん"] == "オンライン"
    assert all(len(reading) >= 3 for reading in spellings)


def test_readings_the_corpus_writes_in_hiragana_are_not_respelled() -> None:
    # "してい" is the reading of 指定, but a corpus that writes "しています" keeps it.
    text = TextProcessor()
    assert text.spellings(["指定の用紙で申し込みます。"])["してい"] == "指定"
    spellings = text.spellings(["指定の用紙で申し込みます。", "受付をしています。"])
    assert "してい" not in spellings and spellings["もうしこみ"] == "申し込み"


def test_respeller_takes_the_longest_known_reading() -> None:
    respeller = KanaRespeller({"せんもん": "専門", "せんもんか": "専門家", "せみなー": "セミナー"})
    assert respeller.respell("せんもんかはいつせみなーをしますか") == "専門家はいつセミナーをしますか"
    assert respeller.respell("専門家 zoom") == "専門家 zoom"
    assert KanaRespeller({}).respell("せんもんか") == "せんもんか"
