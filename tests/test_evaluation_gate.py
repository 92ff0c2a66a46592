"""The evaluation gate, on the real answer path (the bundled samples in a real Chroma, the quote policy): a template
version that leaves the knowledge passages out of the prompt answers the test set worse than the active one and
is not activated, unless an admin gives a reason, which is recorded; a harmless change goes live with its
scores; a run can be cancelled; the gate never activates on a stale result."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chatbot.insights.evaluation_gate import GateBlockedError, GateCancelledError, score_answer
from chatbot.insights.evaluation_sets import EvalCase
from ingest.pipeline import IngestPipeline, expand_paths
from tests.helpers.paths import SAMPLES

TEST_SET = (
    b"question,expected_answer,should_refuse\n"
    b"How long do I have to return an item?,30 days from the delivery date,\n"
    b"Is return shipping free?,free for customers in the European Union and the United Kingdom,\n"
    b"Do you sell used cars?,,yes\n"
)


@pytest.fixture
def gated(make_services: Any) -> Any:
    services = make_services(grounding={"policy": "quote"})
    IngestPipeline(services.knowledge).ingest_files(expand_paths([SAMPLES]), "default")
    services.insights.sets.import_csv("default", TEST_SET)
    return services


def save(services: Any, note: str, **changes: Any) -> int:
    template = services.templates.active("default").template.model_copy(update=changes)
    return services.templates.save("default", template, note=note).version


def test_a_template_without_the_passages_is_blocked_until_a_reason_is_given(gated: Any) -> None:
    gate = gated.insights.gate
    blind = save(gated, "no passages", relevance_threshold=1.0)  # only a perfect match reaches the prompt
    seen: list[tuple[int, int]] = []
    result = gate.evaluate("default", blind, progress=lambda done, total: seen.append((done, total)))

    assert result.blocked
    assert result.active_score == pytest.approx(1.0)  # the built-in template answers both and refuses the car
    assert not result.candidate[0].answered  # the return period's passage is kept out: handed off
    assert result.score <= 2 / 3 + 1e-9
    assert seen[-1] == (6, 6)
    assert "worse than the active version by more than the margin (0.05)" in result.verdict()

    with pytest.raises(GateBlockedError, match=r"Not activated: v1 scored 0.\d\d .* Give a reason"):
        gate.activate("default", blind, result, by="ana")
    assert gated.templates.active("default").version == 0

    gate.activate("default", blind, result, by="ana", reason="testing the handoff wording on staging")
    assert gated.templates.active("default").version == blind
    [record] = gate.activations("default")
    assert (record.version, record.replaced, record.overridden, record.activated_by) == (blind, 0, True, "ana")
    assert record.reason == "testing the handoff wording on staging"
    assert (record.score, record.replaced_score, record.questions) == (result.score, result.active_score, 3)


def test_a_harmless_change_goes_live_with_its_scores(gated: Any) -> None:
    gate = gated.insights.gate
    warmer = save(gated, "warmer lead", quote_lead="Here is what our policy says:")
    result = gate.evaluate("default", warmer)
    assert not result.blocked
    assert result.score == pytest.approx(result.active_score, abs=0.05)
    gate.activate("default", warmer, result, by="ana")
    [record] = gate.activations("default")
    assert (record.version, record.overridden, record.reason) == (warmer, False, "")


def test_a_cancelled_run_activates_nothing(gated: Any) -> None:
    cancel = threading.Event()
    version = save(gated, "any")

    def progress(done: int, total: int) -> None:
        if done == 2:
            cancel.set()  # the admin presses Cancel while the second answer is written

    with pytest.raises(GateCancelledError, match="Cancelled after 2 of 6 answers; nothing was activated"):
        gated.insights.gate.evaluate("default", version, progress=progress, cancel=cancel)
    assert gated.templates.active("default").version == 0
    assert gated.insights.gate.activations("default") == []


def test_the_gate_needs_a_fresh_result(gated: Any) -> None:
    gate = gated.insights.gate
    first, second = save(gated, "one"), save(gated, "two")
    result = gate.evaluate("default", first)
    with pytest.raises(GateBlockedError, match="Run the test set before activating"):
        gate.activate("default", second, None, by="ana")
    gated.templates.activate("default", second)  # someone else activated another version meanwhile
    with pytest.raises(GateBlockedError, match="versions changed since the test ran"):
        gate.activate("default", first, result, by="ana")


def test_without_a_test_set_activation_is_recorded_untested(make_services: Any) -> None:
    services = make_services()
    version = save(services, "any")
    assert services.insights.gate.evaluate("default", version) is None
    services.insights.gate.activate("default", version, None, by="ana")
    [record] = services.insights.gate.activations("default")
    assert (record.score, record.questions) == (None, 0)


def test_answers_are_scored_as_the_answers_bench_scores_them() -> None:
    expected = EvalCase(1, "default", "How long?", "30 days", False, "csv")
    assert score_answer(expected, "You have 30 days [1].", answered=True) == 1.0  # contains it
    assert score_answer(expected, "Thirty days.", answered=True) == pytest.approx(0.5)  # F1: "days" of two words
    assert score_answer(expected, "30 days", answered=False) == 0.0
    refuse = EvalCase(2, "default", "Cars?", "", True, "csv")
    assert score_answer(refuse, "I could not find this.", answered=False) == 1.0
    assert score_answer(refuse, "Yes, cars.", answered=True) == 0.0
    chinese = EvalCase(3, "default", "退货要多久？", "30天", False, "csv")
    assert score_answer(chinese, "您可以在30天内退货。", answered=True) == 1.0
