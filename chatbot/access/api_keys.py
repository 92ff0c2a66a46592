"""API keys: created and revoked by admins, stored as SHA-256 hashes, scoped to chat or admin; keys from
settings (RAGDESK_API_KEYS) work beside them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import DateTime, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from chatbot.settings import ApiKeySetting
from knowledge.database import Base, utcnow

Scope = Literal["chat", "admin"]
KEY_PREFIX = "rdk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(10))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    shown: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise a key in a list
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    scope: str
    shown: str
    created_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class Caller:
    """Who an API request comes from: the key's identity (conversations belong to it) and its scope."""

    identity: str
    scope: Scope

    def may(self, needed: Scope) -> bool:
        return self.scope == "admin" or needed == "chat"


class ApiKeyStore:
    def __init__(self, sessions: sessionmaker[Session], configured: list[ApiKeySetting]) -> None:
        self._sessions = sessions
        self._configured = [(_digest(k.key.get_secret_value()), k.scope, k.name) for k in configured]

    def create(self, name: str, scope: Scope) -> tuple[str, ApiKeyInfo]:
        """A new key; its plain text is returned once and never stored."""
        if scope not in ("chat", "admin"):
            raise ValueError(f"unknown scope {scope!r}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            name=name.strip()[:100] or "unnamed",
            scope=scope,
            key_hash=_digest(key),
            shown=key[:10],
            created_at=utcnow(),
        )
        with self._sessions.begin() as s:
            s.add(row)
        return key, _info(row)

    def list(self) -> list[ApiKeyInfo]:
        with self._sessions() as s:
            return [_info(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke(self, key_id: int) -> bool:
        with self._sessions.begin() as s:
            changed = s.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(changed.rowcount)  # type: ignore[attr-defined]

    def any_configured(self) -> bool:
        return bool(self._configured) or any(not k.revoked for k in self.list())

    def verify(self, key: str) -> Caller | None:
        digest = _digest(key)
        for configured, scope, _name in self._configured:
            if hmac.compare_digest(configured, digest):
                return Caller(f"key:settings:{digest[:12]}", scope)  # type: ignore[arg-type]
        with self._sessions() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest, ApiKeyRow.revoked_at.is_(None)))
            return Caller(f"key:{row.id}", row.scope) if row else None  # type: ignore[arg-type]


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.name, row.scope, row.shown, row.created_at, row.revoked_at is not None)
