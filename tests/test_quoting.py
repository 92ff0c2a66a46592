"""Quoting: a question whose words the passages do not cover is handed off before anything is written; the
passages' own sentences answer when the template says quote, or when the check kept nothing the model wrote."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from chatbot.conversation.grounding import GroundingCheck
from chatbot.conversation.quoting import QuotePicker
from chatbot.settings import GroundingSettings
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

RENTALS = (
    "Rental terms › Prices\n"
    "- City bike: 4 euros per hour or 18 euros per day.\n"
    "- E-bike: 7 euros per hour or 35 euros per day.\n"
    "- Children's bike: 2 euros per hour or 10 euros per day."
)
BOOKINGS = (
    "Bookings › Cancelling a booking\n"
    "You can cancel free of charge up to 24 hours before the rental starts. Later cancellations are charged\n"
    "50 percent of the rental price. If you do not show up at all, the full price is charged."
)
NOT_RETURNABLE = "Returns and refunds › Items that cannot be returned\n\n- Gift cards\n- Opened descaling tablets"


@pytest.fixture(scope="module")
def parts(embeddings: Any) -> tuple[GroundingCheck, QuotePicker]:
    return GroundingCheck(embeddings, GroundingSettings()), QuotePicker(embeddings, GroundingSettings())


def test_a_question_about_what_no_passage_mentions_is_unanswered_and_says_which_word(
    parts: tuple[GroundingCheck, QuotePicker],
) -> None:
    check, quotes = parts
    for question in ("Do you rent tandem bikes?", "How much does a tandem cost per day?"):
        assert quotes.unanswered(check.evidence([RENTALS, BOOKINGS], question)) == (
            "the documents do not mention 'tandem'"
        )


@pytest.mark.parametrize("question", ["Can I pay the rental with PayPal?", "Do you deliver bikes to Canada?"])
def test_an_on_topic_question_the_passages_do_not_answer_is_unanswered(
    parts: tuple[GroundingCheck, QuotePicker], question: str
) -> None:
    check, quotes = parts
    assert quotes.unanswered(check.evidence([RENTALS, BOOKINGS], question)) is not None


@pytest.mark.parametrize(
    "question",
    [
        "How much does an e-bike cost per day?",
        "Until when can I cancel without paying anything?",  # "paying" ~ "charged", "cancel" is there
        "Is there a charge if I do not show up for my booking?",
    ],
)
def test_a_question_the_passages_answer_is_not_unanswered(
    parts: tuple[GroundingCheck, QuotePicker], question: str
) -> None:
    check, quotes = parts
    assert quotes.unanswered(check.evidence([RENTALS, BOOKINGS], question)) is None


def test_the_quote_is_the_passage_sentence_that_answers_with_its_passage_number(
    parts: tuple[GroundingCheck, QuotePicker],
) -> None:
    check, quotes = parts
    quote = quotes.pick(check.evidence([RENTALS, BOOKINGS], "What do I pay if I don't show up for my booking?"))

    assert quote is not None
    assert "If you do not show up at all, the full price is charged. [2]" not in quote.text("")
    assert "If you do not show up at all, the full price is charged [2]." in quote.text("")
    assert quote.citations == (2,)


def test_list_items_are_quoted_under_their_heading_so_a_negation_stays_with_them(
    parts: tuple[GroundingCheck, QuotePicker],
) -> None:
    check, quotes = parts
    evidence = check.evidence([NOT_RETURNABLE], "Can I return a gift card?")

    assert [s for _, s in evidence.sentences] == [
        "Items that cannot be returned: Gift cards",
        "Items that cannot be returned: Opened descaling tablets",
    ]
    assert not evidence.judge("You can return gift cards.").supported
    quote = quotes.pick(evidence)
    assert quote is not None
    assert quote.text("").startswith("Items that cannot be returned: Gift cards [1]")


def _ingested(make_services: Any, answer: str, **overrides: Any) -> Any:
    services = make_services(chat_model=FakeListChatModel(responses=[answer]), **overrides)
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    return services


def test_the_quote_policy_answers_with_the_passages_and_never_asks_the_model(make_services: Any) -> None:
    services = _ingested(make_services, "WRITTEN BY THE MODEL.", grounding={"policy": "quote"})
    conversation = services.chat.new_conversation("me")

    result = services.chat.answer("me", conversation.id, "How many days do I have to return an item?")

    assert result.mode == "quoted"
    assert "MODEL" not in result.answer
    assert result.answer.startswith("Here is what our documents say: ")
    assert "30 days from the delivery date" in result.answer
    assert result.citations[0].document == "returns-and-refunds.md"
    stored = services.conversations.transcript("me", conversation.id)[0]
    assert stored.mode == "quoted"
    assert stored.answer == result.answer

    # a follow-up is not rewritten by the model either: the previous question and this one search together
    follow_up = services.chat.answer("me", conversation.id, "And what about gift cards?")
    assert follow_up.standalone_question == "How many days do I have to return an item? And what about gift cards?"
    assert "MODEL" not in follow_up.answer
    assert "Gift cards" in follow_up.answer


def test_when_the_check_keeps_nothing_the_model_wrote_the_passages_are_quoted(make_services: Any) -> None:
    invented = "Yes, opened items can be returned within 90 days."
    services = _ingested(make_services, invented)
    conversation = services.chat.new_conversation("me")

    result = services.chat.answer("me", conversation.id, "Can I return an item that I opened?")

    assert result.answered
    assert result.mode == "quoted"
    assert "90" not in result.answer
    assert result.citations
    assert [s.text for s in result.dropped] == [invented]


def test_a_question_no_passage_covers_is_handed_off_and_the_model_never_writes(make_services: Any) -> None:
    services = _ingested(make_services, "Yes, we sell them.")
    conversation = services.chat.new_conversation("me")

    result = services.chat.answer("me", conversation.id, "Do you sell espresso machines?")

    assert not result.answered
    assert result.mode == "handoff"
    assert result.checked == ()
    assert result.answer == services.templates.active("default").template.no_answer_reply


def test_a_passage_s_own_question_is_never_quoted_and_a_repeated_sentence_is_quoted_once(
    parts: tuple[GroundingCheck, QuotePicker],
) -> None:
    check, quotes = parts
    faq = "FAQ › Deposits\nHow much is the deposit for a bike? The deposit is 100 euros per bike, paid by credit card."
    evidence = check.evidence([faq, faq], "How much is the deposit for a bike?")

    quote = quotes.pick(evidence)

    assert quote is not None
    assert "?" not in quote.text("")
    assert quote.text("").count("The deposit is 100 euros per bike") == 1
