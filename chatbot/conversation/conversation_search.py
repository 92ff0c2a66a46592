"""What the admins' conversation table asks for (ConversationQuery) and gets back: one page of conversations, each
with its turns counted, answered and handed off, and its thumbs (ConversationStore.search runs the SQL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

PAGE_SIZE = 50


@dataclass(frozen=True)
class ConversationQuery:
    """Filters, all optional, and the page wanted (0 = the newest conversations)."""

    text: str = ""  # in the title, a question or the user
    unanswered_only: bool = False  # at least one turn handed off
    thumbs_down_only: bool = False  # at least one answer rated down
    kb: str | None = None
    date_from: date | None = None  # last activity on or after this day (UTC)
    date_to: date | None = None  # last activity on or before this day (UTC)
    page: int = 0
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class ConversationSummary:
    """One row of the table."""

    id: str
    owner: str
    kb: str
    title: str
    updated_at: datetime
    turns: int
    answered: int
    handed_off: int
    thumbs_up: int
    thumbs_down: int


@dataclass(frozen=True)
class ConversationPage:
    rows: list[ConversationSummary]
    total: int  # conversations matching the filters, on every page
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))
