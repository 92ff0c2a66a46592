"""The Prompts tab's examples form, without a browser: what each button does to the list of examples, and that a
saved template keeps them in order."""

from __future__ import annotations

from chatbot.conversation.templates import ENGLISH_DEFAULT, MAX_EXAMPLES, Example
from chatbot.ui.examples_form import (
    add_example,
    choose_example,
    move_example,
    remove_example,
    show_examples,
    update_example,
)
from chatbot.ui.prompts_tab import form_from_template, template_from_form

ROWS = [["Hi?", "Ahoy!", ""], ["Bye?", "Fair winds!", "be brief"]]


def test_an_example_is_added_at_the_end_when_it_has_a_question_and_an_answer() -> None:
    rows, chosen, message = add_example(ROWS, "  Where is my order? ", "Look in Orders.", "")
    assert rows == [*ROWS, ["Where is my order?", "Look in Orders.", ""]]
    assert chosen is None  # the form is cleared for the next one
    assert message == "Added example 3."


def test_an_example_is_refused_with_what_is_missing_when_the_question_or_answer_is_empty() -> None:
    assert add_example(ROWS, "Hi?", "  ", "")[2] == "An example needs an ideal answer."
    assert add_example(ROWS, "", "", "")[2] == "An example needs a customer question and an ideal answer."
    assert update_example(ROWS, 1, " ", "Ahoy!", "")[2] == "An example needs a customer question."
    full = [["q", "a", ""]] * MAX_EXAMPLES
    assert add_example(full, "q", "a", "")[2].startswith(f"At most {MAX_EXAMPLES} examples")


def test_the_chosen_example_is_updated_in_place() -> None:
    rows, chosen, message = update_example(ROWS, 2, "Bye?", "Farewell!", "")
    assert rows == [ROWS[0], ["Bye?", "Farewell!", ""]]
    assert (chosen, message) == (2, "Updated example 2.")
    assert update_example(ROWS, None, "q", "a", "")[2] == "Choose the example to update in the list."


def test_a_moved_example_stays_chosen_and_cannot_move_past_either_end() -> None:
    rows, chosen, _ = move_example(ROWS, 2, -1)
    assert rows == [ROWS[1], ROWS[0]]
    assert chosen == 1
    assert move_example(ROWS, 1, -1)[2] == "Example 1 is already first."
    assert move_example(ROWS, 2, 1)[2] == "Example 2 is already last."


def test_a_removed_example_leaves_the_others_in_order() -> None:
    rows, chosen, message = remove_example(ROWS, 1)
    assert (rows, chosen, message) == ([ROWS[1]], None, "Removed example 1.")


def test_the_list_is_numbered_and_the_chosen_example_fills_the_form() -> None:
    listing, question, answer, reasoning, update = show_examples(ROWS, 2)
    assert listing.choices == [("1. Hi? → Ahoy!", 1), ("2. Bye? → Fair winds!", 2)]
    assert listing.value == 2
    assert (question, answer, reasoning) == ("Bye?", "Fair winds!", "be brief")
    assert update.value == "Update example 2"
    assert update.interactive
    assert choose_example(ROWS, 5)[:4] == (None, "", "", "")  # gone (another template loaded): a new one


def test_a_template_keeps_the_examples_in_the_order_of_the_list() -> None:
    form = list(form_from_template(ENGLISH_DEFAULT))
    form[1] = ROWS
    template = template_from_form(*form)
    assert template.examples == [
        Example(question="Hi?", answer="Ahoy!"),
        Example(question="Bye?", answer="Fair winds!", reasoning="be brief"),
    ]
    assert form_from_template(template)[1] == ROWS
