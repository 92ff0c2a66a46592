"""Chinese customers: the question's language is detected and kept with the turn; a model that does not write the
customer's language is never asked for the answer, which is quoted from the documents with a Chinese lead; what
the documents do not answer gets the Chinese handoff; odd input gets a sensible reply, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from prometheus_client import REGISTRY

from chatbot.conversation.language import detect_language
from chatbot.conversation.templates import CHINESE_DEFAULT, ENGLISH_DEFAULT
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import REPO

CHINESE_SAMPLES = REPO / "knowledge" / "samples_zh"
MODEL_SAYS = "THE MODEL WROTE THIS."


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("退货期限是多久？", "zh"),
        ("退貨期限是多久？", "zh"),  # traditional characters
        ("我的 Aurora kettle 底座坏了，保修几个月？", "zh"),  # an English product name in a Chinese question
        ("我这单一共１５０元，要付运费吗？", "zh"),  # full-width digits
        ("How long is the warranty?", "en"),
        ("warranty", "en"),
        ("What does 退货 mean?", "en"),
        ("Combien coûte la livraison en Belgique ?", "other"),
        ("Сколько стоит доставка?", "other"),
        ("😀😀😀", "other"),
    ],
)
def test_the_question_s_language_is_read_from_its_script(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.fixture
def chinese_shop(make_services: Any) -> Any:
    """The Chinese samples behind a model that writes English only (as the bundled one)."""
    services = make_services(chat_model=FakeListChatModel(responses=[MODEL_SAYS]), llm={"languages": ["en"]})
    IngestPipeline(services.knowledge).ingest_files(expand_paths([CHINESE_SAMPLES]), "default")

    def ask(question: str) -> Any:
        return services.chat.answer("me", services.chat.new_conversation("me").id, question)

    ask.services = services  # type: ignore[attr-defined]
    return ask


def test_a_chinese_question_is_answered_by_quoting_the_documents_never_by_the_model(chinese_shop: Any) -> None:
    labels = {"kb": "default", "mode": "quoted", "language": "zh"}
    before = REGISTRY.get_sample_value("ragdesk_answers_by_mode_total", labels) or 0.0

    result = chinese_shop("铂金会员的退货期限是多少天？")

    assert result.mode == "quoted"
    assert result.language == "zh"
    assert MODEL_SAYS not in result.answer
    assert result.answer.startswith("根据《")  # the Chinese lead, naming the document
    assert "45天" in result.answer
    assert "[1]" in result.answer
    assert result.citations[0].document in ("会员.md", "退货政策.md")
    stored = chinese_shop.services.conversations.transcript("me", result_conversation(chinese_shop, result))[0]
    assert stored.language == "zh"
    assert REGISTRY.get_sample_value("ragdesk_answers_by_mode_total", labels) == before + 1


def result_conversation(ask: Any, result: Any) -> str:
    """The conversation the result was saved in (the newest of the owner's)."""
    return str(ask.services.chat.list_conversations("me")[0].id)


def test_a_chinese_question_the_documents_do_not_answer_gets_the_chinese_handoff(chinese_shop: Any) -> None:
    result = chinese_shop("你们卖咖啡机吗？")

    assert not result.answered
    assert result.answer == CHINESE_DEFAULT.no_answer_reply  # the English knowledge base's template, in Chinese
    assert "咖啡机" in (result.refusal or "")


def test_an_english_question_keeps_the_english_replies(chinese_shop: Any) -> None:
    result = chinese_shop("Do you sell espresso machines?")

    assert result.language == "en"
    assert result.answer == ENGLISH_DEFAULT.no_answer_reply


@pytest.mark.parametrize(
    "question",
    [
        "退貨運費誰出？我住在澳門",  # traditional characters, found in simplified documents
        "我这单一共１５０元，选标准配送要付运费吗？",  # full-width digits
        "我的 Aurora kettle 底座坏了，这个配件保修几个月？",  # mixed Chinese and English
        "😀😀😀",
        "退货" * 1990,  # a 3,980-character question
    ],
)
def test_odd_chinese_input_gets_a_reply_in_its_language_or_a_clear_error(chinese_shop: Any, question: str) -> None:
    result = chinese_shop(question)

    assert result.answer.strip()
    assert MODEL_SAYS not in result.answer
    expected = detect_language(question)
    if expected == "zh":
        assert detect_language(result.answer) == "zh"
    else:
        assert result.answer in (ENGLISH_DEFAULT.no_answer_reply,) or "[1]" in result.answer


@pytest.mark.slow
def test_with_the_bundled_models_chinese_is_quoted_and_handed_off_in_chinese_and_english_still_answered(
    make_services: Any, bundled_models_dir: Any
) -> None:
    services = make_services(llm={"backend": "local"}, models_dir=bundled_models_dir)
    services.start_knowledge_base("lumora-zh", "中文")
    IngestPipeline(services.knowledge).ingest_files(expand_paths([CHINESE_SAMPLES]), "lumora-zh")

    def ask(question: str) -> Any:
        return services.chat.answer("me", services.chat.new_conversation("me", "lumora-zh").id, question)

    platinum = ask("铂金会员可以在多少天内退货？")
    assert platinum.mode == "quoted"
    assert platinum.answer.startswith("根据《")
    assert "45天" in platinum.answer
    cited = {c.document for c in platinum.citations}
    assert cited & {"会员.md", "退货政策.md"}

    coffee = ask("你们卖咖啡机吗？")
    assert coffee.answer == CHINESE_DEFAULT.no_answer_reply

    english = ask("How many days do platinum members have to return an item?")
    assert english.language == "en"
    assert detect_language(english.answer) == "en"  # the English handoff: the English catalogue, not the template
