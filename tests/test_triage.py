"""Languages, romaji, small talk, urgent danger and the personal-data notice: the pieces on
their own, and the new kinds of reply through the HTTP API with the real model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.engine import Engine
from bot.errors import CorpusError
from bot.language import detect_language, is_romaji, romaji_to_kana
from bot.triage import load_triage_corpus
from bot.types import Matrix


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("カスハラって何ですか", "ja"),
        ("資料請求", "ja"),
        ("semina no shiryo moraemasu ka", "ja"),
        ("Can I get the seminar slides?", "en"),
        ("hi", "en"),
        ("研讨会是在线的吗？", "zh"),
        ("세미나는 온라인인가요?", "ko"),
        ("Hội thảo có trực tuyến không?", "vi"),
        ("सेमिनार अनलाइन हुन्छ?", "ne"),
    ],
)
def test_language_is_detected(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("text", "kana"),
    [
        ("kasuhara tte nani", "かすはらってなに"),
        ("konnichiwa", "こんにちわ"),
        ("seminaa no keishiki wa?", "せみなーのけいしきわ?"),
        ("senmonka haken", "せんもんかはけん"),
    ],
)
def test_romaji_is_read_as_kana(text: str, kana: str) -> None:
    assert is_romaji(text)
    assert romaji_to_kana(text) == kana


@pytest.mark.parametrize("text", ["Is the seminar online?", "Can I get the slides?", "What is customer harassment?", "カスハラ"])
def test_english_and_japanese_are_not_romaji(text: str) -> None:
    assert not is_romaji(text)


def test_small_talk_around_a_question_is_stripped_and_alone_is_recognized(engine: Engine) -> None:
    triage = engine.answerer.triage
    assert triage is not None
    smalltalk = triage.smalltalk
    assert smalltalk.split("ありがとう、セミナーの資料はもらえますか") == ("セミナーの資料はもらえますか", None)
    assert smalltalk.split("hi, is the seminar online?") == ("is the seminar online?", None)
    text, intent = smalltalk.split("こんにちは〜！")
    assert text == "" and intent is not None and smalltalk.intents[intent].id == "greeting"
    assert smalltalk.intents[smalltalk.split("ありがとうございました！")[1] or 0].id == "thanks"
    assert smalltalk.split("hiroshima no seminaa") == ("hiroshima no seminaa", None), "a phrase inside a word is not one"
    for strengthened in ("本当にありがとうございました", "thank you so much!", "Cảm ơn bạn nhiều"):
        assert smalltalk.split(strengthened)[1] is not None, strengthened
    assert smalltalk.split("so, what is kasuhara?") == ("so, what is kasuhara?", None)
    assert smalltalk.split("thanks, what is kasuhara?") == ("what is kasuhara?", None), "laughter is no word's first w"
    assert smalltalk.intents[smalltalk.split("sorry, wrong chat")[1] or 0].id == "sent-by-mistake"
    assert smalltalk.intents[smalltalk.split("ありがとうwww")[1] or 0].id == "thanks"
    assert smalltalk.intents[smalltalk.split("what can you help me with?")[1] or 0].id == "capabilities"
    assert smalltalk.intents[smalltalk.split("テスト送信です")[1] or 0].id == "sent-by-mistake"
    assert not triage.safety.alarming("what can you help me with?"), "asking for help with a question is not a call for help"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("今お客さんに殴られています、助けてください", "urgent"),
        ("客が包丁を持って暴れている", "urgent"),
        ("There is a man with a knife in our shop right now", "urgent"),
        ("もう消えたい", "crisis"),
        ("先週、客に殴られました。どこに相談すればいいですか", None),
        ("昨日「殺すぞ」と言われたのですが、これはカスハラですか", None),
        ("死ぬほど疲れた", None),
        ("刃物を持った客への対応マニュアルを作りたい", None),
        ("セミナーの資料はもらえますか", None),
        ("いまおきゃくがあばれてて こわい", "urgent"),
        ("客がいま刃物を出して店員を脅している。通報したほうがいい？", "urgent"),
        ("I've been thinking about killing myself since that day", "crisis"),
        ("I just want to disappear and never come back", "crisis"),
        ("先週客に殴られた。今は平気だけど、どこに相談すればいい？", None),
        ("kinou kyaku ni nagurareta kedo ima wa daijoubu desu", None),
        ("小説で客が店員を刺す場面を書いています。リアルにするには？", None),
        ("花粉症の薬は何がいい？", None),
        ("てすと", None),
        ("감사합니다! 정말 도움이 됐어요", None),
        ("包丁を持った客が来たら、まず逃げてもいいですか", None),
        ("Should I call 110? A man is smashing the glass doors of our shop now", "urgent"),
        ("I was hit by a customer last month. I'm fine now, how do I consult you?", None),
        ("いまおきゃくさんがどなってものなげてる こわい", "urgent"),
        ("ころされる", "urgent"),
        ("せんしゅうきゃくになぐられた、どこにそうだんすればいい", None),
        ("しぬほどつかれた", None),
        ("I keep hurting myself after every shift", "crisis"),
    ],
)
def test_danger_now_is_told_from_danger_that_happened(engine: Engine, message: str, expected: str | None) -> None:
    triage = engine.answerer.triage
    assert triage is not None
    ranking = engine.retriever.ranking(message)
    vectors = (ranking.base_vectors if ranking.base_vectors is not None else ranking.vectors)[:1]
    assert triage.safety.assess(message, vectors) == expected


def base_vectors(engine: Engine, message: str) -> Matrix:
    ranking = engine.retriever.ranking(message)
    return (ranking.base_vectors if ranking.base_vectors is not None else ranking.vectors)[:1]


@pytest.mark.parametrize(
    "message",
    [
        "Someone is pounding on the back door and screaming that he will get me",
        "客がカウンター越しに身を乗り出して、店員に物をぶつけようとしている",
        "怒った客が店の中で商品棚を倒して回っている",
    ],
)
def test_the_classifier_reads_danger_now_that_no_danger_word_names(engine: Engine, message: str) -> None:
    """No cue word marks these as danger: with the nearest-example rule off, the classifier
    over the whole message calls them urgent, and without it nothing does."""
    triage = engine.answerer.triage
    assert triage is not None and triage.safety.model is not None
    danger, _, _, _, self_harm, _ = triage.safety.cues(message)
    assert not danger and not self_harm
    vectors = base_vectors(engine, message)
    assert triage.safety.assess(message, vectors) == "urgent"
    classifier_only = triage.safety.with_margins(replace(triage.safety.margins, urgent=1.0))
    assert classifier_only.assess(message, vectors) == "urgent"
    neither = classifier_only.with_margins(replace(classifier_only.margins, urgent_probability=1.01))
    assert neither.assess(message, vectors) is None


@pytest.mark.parametrize(
    "message",
    [
        "Two years ago a man smashed our shop window. How do we prevent it?",
        "先月、客がドアを蹴って壊しました。修理代を請求できますか",
        "セミナーの申し込みはいつまでですか",
        "Tôi muốn biết lịch hội thảo tháng sau",
    ],
)
def test_the_classifier_leaves_consultations_and_questions_calm(engine: Engine, message: str) -> None:
    triage = engine.answerer.triage
    assert triage is not None
    vectors = base_vectors(engine, message)
    probabilities = triage.safety.probabilities(message, vectors)
    assert probabilities is not None and probabilities[0] > probabilities[1]
    assert triage.safety.assess(message, vectors) is None


def test_a_broken_cue_names_the_file_and_the_pattern(tmp_path: Path, settings: Settings) -> None:
    for name in ("smalltalk.yaml", "safety.yaml", "languages.yaml"):
        (tmp_path / name).write_text((settings.corpus_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    safety = (tmp_path / "safety.yaml").read_text(encoding="utf-8").replace("danger: [殴,", "danger: ['(殴',", 1)
    (tmp_path / "safety.yaml").write_text(safety, encoding="utf-8")
    with pytest.raises(CorpusError, match=r"safety.yaml: cues.danger: '\(殴' is not a valid pattern"):
        load_triage_corpus(tmp_path)


def test_a_corpus_without_triage_files_has_no_triage(tmp_path: Path) -> None:
    assert load_triage_corpus(tmp_path) is None


# ---- through the HTTP API --------------------------------------------------------------


@pytest.fixture(scope="module")
def app(settings: Settings, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    database = tmp_path_factory.mktemp("triage") / "log.sqlite3"
    return create_app(settings.model_copy(update={"database_url": f"sqlite:///{database}"}), engine)


@pytest.fixture(scope="module")
def api(app: FastAPI) -> TestClient:
    with TestClient(app) as client:
        yield client  # type: ignore[misc]


def ask(api: TestClient, query: str) -> dict[str, object]:
    response = api.post("/v1/ask", json={"query": query})
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def test_a_greeting_gets_a_short_reply_without_apology_or_route(api: TestClient) -> None:
    body = ask(api, "こんにちは！")
    assert body["decision"] == "smalltalk" and body["answered"] is False
    assert body["faq"] is None and body["route"] is None and body["suggestions"] == []
    assert "申し訳" not in str(body["answer"]) and "よくあるご質問" in str(body["answer"])
    assert body["language"] == "ja" and body["notice"] is None


def test_an_english_thanks_gets_an_english_reply(api: TestClient) -> None:
    body = ask(api, "thank you!")
    assert body["decision"] == "smalltalk" and body["language"] == "en"
    assert "welcome" in str(body["answer"])


def test_thanks_in_front_of_a_question_does_not_shadow_it(api: TestClient) -> None:
    body = ask(api, "ありがとう、セミナーの資料はもらえますか")
    assert body["decision"] == "answered" and body["faq"]["id"] == "seminar-materials"  # type: ignore[index]


def test_danger_now_gets_the_emergency_numbers_first(api: TestClient, app: FastAPI) -> None:
    body = ask(api, "今お客さんに殴られています、助けてください")
    assert body["decision"] == "urgent" and body["answered"] is False and body["faq"] is None
    route = body["route"]
    assert isinstance(route, dict) and route["kind"] == "emergency" and route["phone"] == "110"
    answer = str(body["answer"])
    assert answer.index("110") < answer.index("総合相談窓口") and "119" in answer
    app.state.query_log.flush()
    logged = app.state.query_log.store.ask(body["ask_id"])
    assert logged is not None and logged.decision == "urgent"


def test_a_greeting_around_a_call_for_help_is_read_for_danger(api: TestClient) -> None:
    assert ask(api, "もしもし、助けて")["decision"] == "urgent"
    assert ask(api, "こんにちは、死にたい")["decision"] == "urgent"


def test_self_harm_gets_the_mental_health_lines(api: TestClient) -> None:
    body = ask(api, "もう消えたい")
    assert body["decision"] == "urgent"
    assert "0570-064-556" in str(body["answer"]) and "こころの健康相談統一ダイヤル" in str(body["answer"])


def test_a_past_incident_is_a_consultation_not_an_emergency(api: TestClient) -> None:
    assert ask(api, "先週、客に殴られました。こういう相談も受け付けていますか")["decision"] != "urgent"


@pytest.mark.parametrize(
    "query", ["Could I take the customer to court over what he said to me?", "顾客骚扰我，我可以告他吗？"]
)
def test_a_legal_question_in_another_language_is_routed_not_answered(api: TestClient, query: str) -> None:
    """Suing and liability are for a lawyer, not this FAQ: no entry's answer fits them."""
    body = ask(api, query)
    assert body["answered"] is False and body["faq"] is None and body["decision"] in ("fallback", "ambiguous")


def test_an_english_question_is_answered_from_the_japanese_faq_with_a_note(api: TestClient) -> None:
    body = ask(api, "Can I get the seminar slides?")
    assert body["decision"] == "answered" and body["faq"]["id"] == "seminar-materials"  # type: ignore[index]
    assert body["language"] == "en"
    assert str(body["answer"]).startswith("The answer below is in Japanese")


def test_a_romaji_question_is_answered(api: TestClient) -> None:
    body = ask(api, "seminaa no shiryou wa moraemasu ka")
    assert body["decision"] == "answered" and body["faq"]["id"] == "seminar-materials"  # type: ignore[index]
    assert body["language"] == "ja"


def test_personal_data_gets_a_notice_and_the_same_answer(api: TestClient) -> None:
    plain = ask(api, "カスハラって何ですか")
    with_phone = ask(api, "カスハラって何ですか 090-1234-5678")
    assert plain["notice"] is None
    assert "個人情報" in str(with_phone["notice"]) and "相談フォーム" in str(with_phone["notice"])
    assert with_phone["faq"] == plain["faq"] and with_phone["answer"] == plain["answer"]
