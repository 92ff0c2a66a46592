"""Assistant templates in SQL: every saved version of every knowledge base's template, and which one is active."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from chatbot.conversation.templates import ENGLISH_DEFAULT, AssistantTemplate
from chatbot.errors import TemplateVersionNotFoundError
from knowledge.database import Base, utcnow
from knowledge.registry import kb_reference


class TemplateVersionRow(Base):
    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("kb", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    version: Mapped[int] = mapped_column(Integer)
    template: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class TemplateVersion:
    kb: str
    version: int  # 0: the built-in default, never saved
    template: AssistantTemplate
    note: str
    active: bool
    created_at: datetime | None

    @property
    def label(self) -> str:
        if self.version == 0:
            return "built-in default"
        when = f"{self.created_at:%Y-%m-%d %H:%M}" if self.created_at else ""
        return " · ".join(p for p in (f"v{self.version}", "active" if self.active else "", when, self.note) if p)


class TemplateStore:
    """Versions are append-only; activating one (also an older one: a rollback) is one transaction."""

    def __init__(self, sessions: sessionmaker[Session], default: AssistantTemplate = ENGLISH_DEFAULT) -> None:
        self._sessions = sessions
        self.default = default

    def active(self, kb: str) -> TemplateVersion:
        with self._sessions() as s:
            row = s.scalar(select(TemplateVersionRow).where(TemplateVersionRow.kb == kb, TemplateVersionRow.active))
            return _version(row) if row else TemplateVersion(kb, 0, self.default, "", True, None)

    def versions(self, kb: str) -> list[TemplateVersion]:
        """Newest first."""
        with self._sessions() as s:
            stmt = (
                select(TemplateVersionRow)
                .where(TemplateVersionRow.kb == kb)
                .order_by(TemplateVersionRow.version.desc())
            )
            return [_version(r) for r in s.scalars(stmt)]

    def get(self, kb: str, version: int) -> TemplateVersion:
        if version == 0:
            return TemplateVersion(kb, 0, self.default, "", not self.versions(kb), None)
        with self._sessions() as s:
            row = s.scalar(
                select(TemplateVersionRow).where(TemplateVersionRow.kb == kb, TemplateVersionRow.version == version)
            )
            if row is None:
                raise TemplateVersionNotFoundError(f"'{kb}' has no template version {version}.")
            return _version(row)

    def save(self, kb: str, template: AssistantTemplate, note: str = "", activate: bool = False) -> TemplateVersion:
        """A new version (validate first: the store keeps whatever it is given)."""
        with self._sessions.begin() as s:
            latest = s.scalar(select(func.max(TemplateVersionRow.version)).where(TemplateVersionRow.kb == kb)) or 0
            if activate:
                s.execute(update(TemplateVersionRow).where(TemplateVersionRow.kb == kb).values(active=False))
            row = TemplateVersionRow(
                kb=kb,
                version=latest + 1,
                template=template.model_dump(mode="json"),
                note=note.strip()[:200],
                active=activate,
                created_at=utcnow(),
            )
            s.add(row)
        return _version(row)

    def activate(self, kb: str, version: int) -> TemplateVersion:
        """Make this version the one the chat uses; version 0 goes back to the built-in default."""
        if version:
            self.get(kb, version)
        with self._sessions.begin() as s:
            s.execute(update(TemplateVersionRow).where(TemplateVersionRow.kb == kb).values(active=False))
            s.execute(
                update(TemplateVersionRow)
                .where(TemplateVersionRow.kb == kb, TemplateVersionRow.version == version)
                .values(active=True)
            )
        return self.active(kb)

    def diff(self, kb: str, old: int, new: int) -> str:
        """What changed between two versions, field by field, as a unified diff ('' when identical)."""
        before, after = self.get(kb, old), self.get(kb, new)
        return "\n".join(
            difflib.unified_diff(
                _lines(before.template), _lines(after.template), before.label, after.label, lineterm="", n=2
            )
        )


def _lines(template: AssistantTemplate) -> list[str]:
    return json.dumps(template.model_dump(mode="json"), indent=2, ensure_ascii=False).splitlines()


def _version(row: TemplateVersionRow) -> TemplateVersion:
    return TemplateVersion(
        row.kb, row.version, AssistantTemplate.model_validate(row.template), row.note, row.active, row.created_at
    )
