from bot.text import TextProcessor, normalize


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
