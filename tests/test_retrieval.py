"""Hybrid retrieval finds exact keywords, paraphrases and Chinese, and cites document and position."""

import pytest

from ingest.pipeline import expand_paths
from knowledge.retriever import Source
from tests.helpers.paths import SAMPLES


@pytest.fixture
def sample_kb(services, pipeline, tmp_path):  # type: ignore[no-untyped-def]
    extra = tmp_path / "parts.md"
    extra.write_text("# Spare parts\n\nThe replacement lid for the kettle has part number LX-4471-B.")
    pipeline.ingest_files([*expand_paths([SAMPLES]), extra], "default")
    return services.knowledge


def test_exact_keyword_is_found_when_it_appears_in_one_chunk(sample_kb) -> None:
    top = sample_kb.retriever("default").invoke("LX-4471-B")[0]
    assert top.metadata["document"] == "parts.md"
    assert top.metadata["keyword_score"] > 0


def test_paraphrase_is_found_when_no_keyword_matches(sample_kb) -> None:
    # No word of the question appears in the answer's section ("Resetting a forgotten password").
    hits = sample_kb.retriever("default").invoke("I can't remember my login secret, what now?")
    assert any(h.metadata["position"].endswith("Resetting a forgotten password") for h in hits)


def test_chinese_question_finds_the_chinese_document(sample_kb) -> None:
    top = sample_kb.retriever("default").invoke("商品破损怎么办")[0]
    assert top.metadata["document"] == "faq-zh.md"
    assert "破损" in top.metadata["position"]


def test_sources_carry_document_position_snippet_and_score(sample_kb) -> None:
    hits = sample_kb.retriever("default").invoke("How long do I have to return an item?")
    source = Source.from_document(hits[0])
    assert source.document == "returns-and-refunds.md"
    assert source.position == "Returns and refunds › Return window"
    assert "30 days" in source.snippet
    assert source.score > 0


def test_code_like_tokens_are_identifiers_but_plain_words_and_numbers_are_not() -> None:
    from knowledge.retriever import identifiers

    assert identifiers("Where is order QX005 and model AK200 v2?") == {"qx005", "ak200"}
    assert identifiers("I waited 30 days for delivery") == set()
