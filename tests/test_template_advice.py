"""Template instructions the model does not reliably follow: found, said in the Prompts tab's check, checked after a
trial, and the closing line that adds fixed words to every answer for certain."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from chatbot.conversation.template_advice import FixedText, fixed_text_instructions, template_advice, unfollowed
from chatbot.conversation.templates import ENGLISH_DEFAULT
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

SIGN_OFF = "Thank you for choosing Lumora!"
ASKS_SIGN_OFF = ENGLISH_DEFAULT.system_prompt + f"\nAlways end your answer with: {SIGN_OFF}"


@pytest.mark.parametrize(
    ("prompt", "found"),
    [
        (ASKS_SIGN_OFF, [FixedText("end", SIGN_OFF)]),
        ('Start every reply with "Hello!" and be kind.', [FixedText("start", "Hello!")]),
        ("End each response by saying goodbye. Be short.", [FixedText("end", "goodbye.")]),
        (ENGLISH_DEFAULT.system_prompt, []),  # "Keep answers short" asks for no fixed words
    ],
)
def test_instructions_to_start_or_end_every_answer_with_fixed_words_are_found(prompt: str, found: list) -> None:
    assert fixed_text_instructions(prompt) == found


def test_the_check_warns_about_a_sign_off_the_model_will_not_reliably_write_until_the_closing_line_holds_it() -> None:
    template = ENGLISH_DEFAULT.model_copy(update={"system_prompt": ASKS_SIGN_OFF, "grounding_policy": "trim"})
    (advice,) = template_advice(template)
    assert SIGN_OFF in advice
    assert "closing line" in advice
    assert template_advice(template.model_copy(update={"closing_line": SIGN_OFF})) == []


def test_the_check_says_that_with_the_quote_policy_the_model_writes_nothing() -> None:
    (advice,) = template_advice(ENGLISH_DEFAULT.model_copy(update={"grounding_policy": "quote"}))
    assert "writes no answer" in advice


def test_a_trial_answer_is_checked_against_the_fixed_words_asked_for() -> None:
    template = ENGLISH_DEFAULT.model_copy(update={"system_prompt": ASKS_SIGN_OFF})
    assert unfollowed(template, "You have 30 days [1].") == [f'end every answer with "{SIGN_OFF}"']
    assert unfollowed(template, f"You have 30 days [1].\n\n{SIGN_OFF}") == []


def _ask(make_services: Any, policy: str, question: str, reply: str = "You have 30 days from delivery.") -> Any:
    services = make_services(chat_model=FakeListChatModel(responses=[reply]))
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    template = ENGLISH_DEFAULT.model_copy(update={"grounding_policy": policy, "closing_line": SIGN_OFF})
    services.templates.save("default", template, activate=True)
    return services.chat.answer("me", services.chat.new_conversation("me").id, question)


@pytest.mark.parametrize("policy", ["off", "trim", "quote"])
def test_the_closing_line_ends_every_answer_whoever_wrote_it(make_services: Any, policy: str) -> None:
    result = _ask(make_services, policy, "How long do I have to return an item?")
    assert result.answered
    assert result.answer.endswith(f"\n\n{SIGN_OFF}")
    assert result.answer.count(SIGN_OFF) == 1


def test_the_closing_line_does_not_follow_the_handoff_reply(make_services: Any) -> None:
    result = _ask(make_services, "trim", "What is the airspeed velocity of an unladen swallow?")
    assert not result.answered
    assert SIGN_OFF not in result.answer
