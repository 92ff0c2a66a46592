"""Test sets: a CSV file is imported whole or not at all, each bad file told what is wrong with it; cases from the
Conversations tab replace the same question's expectation; the set's size is bounded."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chatbot.insights.evaluation_sets import CaseDraft, EvaluationSetError, EvaluationSets, parse_csv
from ingest.pipeline import expand_paths
from tests.helpers.paths import SAMPLES


@pytest.fixture
def sets(services: Any) -> EvaluationSets:
    return services.insights.sets


def test_a_good_file_is_imported_with_refusals_and_a_bom(sets: EvaluationSets) -> None:
    data = (
        "\ufeffQuestion,Expected answer,Should refuse\n"
        'How long do I have to return an item?,"30 days, from delivery",\n'
        "Do you sell cars?,,yes\n"
        "\n"
        "退货要多久？,30天,\n"
    ).encode()
    assert sets.import_csv("default", data) == 3
    cases = sets.cases("default")
    assert [(c.question, c.expected, c.should_refuse, c.origin) for c in cases] == [
        ("How long do I have to return an item?", "30 days, from delivery", False, "csv"),
        ("Do you sell cars?", "", True, "csv"),
        ("退货要多久？", "30天", False, "csv"),
    ]


def test_the_same_question_again_replaces_its_expectation(sets: EvaluationSets) -> None:
    sets.import_csv("default", b"question,expected_answer\nIs shipping free?,Yes above 50 euros\n")
    sets.add("default", CaseDraft("  is SHIPPING   free? ", "", should_refuse=True), origin="should refuse")
    [case] = sets.cases("default")
    assert (case.should_refuse, case.origin) == (True, "should refuse")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty"),
        (b"question;answer\nA;B\n", "needs a header line with the columns question and expected_answer"),
        (b"query,expected_answer\nA,B\n", "Its columns are: query, expected_answer"),
        ("question,expected_answer\nCafé?,Oui\n".encode("cp1252"), "not UTF-8 text (byte 0xe9 at position 28)"),
        (b"question,expected_answer\n", "has a header but no questions"),
        (b"question,expected_answer\n,orphan answer\nFine?,Yes\nNo answer?,\n", "Line 2: the question is empty"),
        (b"question,expected_answer\nNo answer?,\n", "Line 2: there is no expected answer"),
        (b'question,expected_answer\n"unclosed,B\n', "Line 2: there is no expected answer"),  # all one cell
    ],
)
def test_a_bad_file_is_explained_and_nothing_is_imported(sets: EvaluationSets, data: bytes, message: str) -> None:
    sets.add("default", CaseDraft("Kept?", "yes"), origin="good answer")
    with pytest.raises(EvaluationSetError, match=re.escape(message)):
        sets.import_csv("default", data)
    assert [c.question for c in sets.cases("default")] == ["Kept?"]


def test_a_file_of_100000_rows_is_refused_whole(sets: EvaluationSets) -> None:
    rows = "".join(f"Question {n}?,Answer {n}\n" for n in range(100_000))
    with pytest.raises(EvaluationSetError, match=r"about 100,000 rows; a test set holds at most 1,000"):
        sets.import_csv("default", f"question,expected_answer\n{rows}".encode())
    assert sets.count("default") == 0


def test_the_set_never_grows_past_its_limit(sets: EvaluationSets) -> None:
    sets.max_cases = 3
    sets.import_csv("default", b"question,expected_answer\nA?,a\nB?,b\n")
    with pytest.raises(EvaluationSetError, match="would hold 4 questions; it holds at most 3"):
        sets.import_csv("default", b"question,expected_answer\nA?,a2\nC?,c\nD?,d\n")
    assert sets.count("default") == 2
    sets.import_csv("default", b"question,expected_answer\nA?,a2\nC?,c\n")  # a replacement adds nothing
    assert sets.count("default") == 3


def test_more_than_ten_bad_lines_are_counted() -> None:
    data = "question,expected_answer\n" + ",x\n" * 14
    with pytest.raises(EvaluationSetError) as caught:
        parse_csv(data.encode(), 1000)
    assert "Line 11:" in str(caught.value)
    assert "Line 12:" not in str(caught.value)
    assert "… and 4 more." in str(caught.value)


def test_a_removed_case_is_gone_and_an_unknown_one_is_said(sets: EvaluationSets) -> None:
    sets.add("default", CaseDraft("Gone?", "yes"), origin="good answer")
    [case] = sets.cases("default")
    assert sets.remove("default", case.id)
    assert not sets.remove("default", case.id)
    assert sets.cases("default") == []


def test_a_turn_marked_in_the_conversations_tab_joins_its_knowledge_base_s_set(services: Any, pipeline: Any) -> None:
    from chatbot.ui.conversations_tab import ConversationsTab

    tab = ConversationsTab(services.conversations, services.insights.sets)
    good, refuse = tab._on_promote(should_refuse=False), tab._on_promote(should_refuse=True)
    conversation = services.chat.new_conversation("customer").id
    assert not services.chat.answer("customer", conversation, "How long do I have to return an item?").answered
    assert "handed off: there is no answer to expect" in good(conversation, 1)  # nothing ingested yet

    pipeline.ingest_files(expand_paths([SAMPLES]), "default")
    conversation = services.chat.new_conversation("customer").id
    turn = services.chat.answer("customer", conversation, "How long do I have to return an item?")
    assert good("", 1) == "Open a conversation first."
    assert good(conversation, 3) == "This conversation has turns 1 to 1."
    assert good(conversation, 1).startswith("Added to the test set of 'default': turn 1, expecting this answer")
    [case] = services.insights.sets.cases("default")
    assert (case.question, case.origin) == ("How long do I have to return an item?", "good answer")
    assert case.expected == re.sub(r"\s*\[\d+\]", "", turn.answer)  # the answer, its [n] markers dropped
    assert case.expected
    refuse(conversation, 1)
    [case] = services.insights.sets.cases("default")  # the same question: its expectation replaced
    assert (case.should_refuse, case.expected, case.origin) == (True, "", "should refuse")
