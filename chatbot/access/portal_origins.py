"""Portal origins that may frame the chat widget: those in settings (fixed) and those admins add (stored)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from chatbot.errors import RagdeskError
from knowledge.database import Base, utcnow

MAX_ORIGIN_CHARS = 253
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_IPV6 = re.compile(r"^[0-9a-f:.]+$")


class InvalidOriginError(RagdeskError):
    """Not an origin a browser could frame the chat from (no scheme, a path, a wildcard...)."""


class PortalOriginRow(Base):
    __tablename__ = "portal_origins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(MAX_ORIGIN_CHARS + 20), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class AllowedOrigin:
    origin: str
    from_settings: bool  # settings' origins cannot be removed here


def normalise_origin(text: str) -> str:
    """`scheme://host[:port]` in lower case, without a default port or a trailing slash; anything else is
    refused with a message that says what to write instead."""
    text = (text or "").strip()
    if not text:
        raise InvalidOriginError("Give an origin, e.g. https://portal.example.com.")
    if len(text) > MAX_ORIGIN_CHARS:
        raise InvalidOriginError(f"An origin is at most {MAX_ORIGIN_CHARS} characters.")
    if "*" in text:
        raise InvalidOriginError("Wildcards are not allowed: add each portal origin, e.g. https://portal.example.com.")
    if "://" not in text:
        raise _missing_scheme(text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidOriginError(f"Only http:// and https:// origins can frame the chat, not {scheme}://.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidOriginError(f"An origin has no path: write {scheme}://{parts.netloc} without what follows.")
    if "@" in parts.netloc:
        raise InvalidOriginError("An origin has no user name or password: write only scheme://host[:port].")
    try:
        port = parts.port
    except ValueError as e:
        raise InvalidOriginError(f"{parts.netloc!r} has no valid port number (1 to 65535).") from e
    if port == 0:
        raise InvalidOriginError(f"{parts.netloc!r} has no valid port number (1 to 65535).")
    host = _ascii_host(parts.hostname or "")
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _missing_scheme(text: str) -> InvalidOriginError:
    scheme = re.match(r"^([a-z][a-z0-9+.-]*):(?!\d+(?:/|$))", text, re.IGNORECASE)  # "javascript:", not "host:8080"
    if scheme:
        return InvalidOriginError(f"Only http:// and https:// origins can frame the chat, not {scheme[1].lower()}:.")
    return InvalidOriginError(f"Give the scheme too: https://{text.rstrip('/')} (or http:// for a test server).")


def _ascii_host(host: str) -> str:
    """A DNS name (international ones in their ASCII form) or an IP address; IPv6 in brackets."""
    if ":" in host:
        if not _IPV6.match(host):
            raise InvalidOriginError(f"{host!r} is not an IPv6 address.")
        return f"[{host}]"
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise InvalidOriginError(f"{host!r} is not a host name.") from e
    if not _HOST.match(ascii_host):
        raise InvalidOriginError(f"{host!r} is not a host name." if host else "The origin names no host.")
    return ascii_host


class PortalOriginStore:
    """The allowed origins: settings' first, then the stored ones in the order they were added. The middleware
    asks `origins()` on every request; it is cached for `cache_s` and refreshed at once after a change here."""

    def __init__(self, sessions: sessionmaker[Session], configured: list[str], cache_s: float = 5.0) -> None:
        self._sessions = sessions
        self._configured = list(dict.fromkeys(o.strip().rstrip("/") for o in configured if o.strip()))
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[str]] | None = None
        self._changes = 0  # a read that overlapped a change is not cached

    def allowed(self) -> list[AllowedOrigin]:
        with self._sessions() as s:
            stored = s.scalars(select(PortalOriginRow.origin).order_by(PortalOriginRow.id)).all()
        fixed = [AllowedOrigin(o, from_settings=True) for o in self._configured]
        return fixed + [AllowedOrigin(o, from_settings=False) for o in stored if o not in self._configured]

    def origins(self) -> list[str]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self._cache_s:
                return self._cached[1]
            changes = self._changes
        current = [o.origin for o in self.allowed()]
        with self._lock:
            if changes == self._changes:
                self._cached = (time.monotonic(), current)
        return current

    def add(self, text: str) -> tuple[str, bool]:
        """(the normalised origin, whether it was new); an origin already allowed is left as it is."""
        origin = normalise_origin(text)
        if origin in self._configured:
            return origin, False
        try:
            with self._sessions.begin() as s:
                s.add(PortalOriginRow(origin=origin, created_at=utcnow()))
        except IntegrityError:  # already stored (the unique column)
            return origin, False
        self._forget()
        return origin, True

    def remove(self, origin: str) -> bool:
        if origin in self._configured:
            raise InvalidOriginError(
                f"{origin} comes from the settings (RAGDESK_PORTAL__ALLOWED_ORIGINS): remove it there."
            )
        with self._sessions.begin() as s:
            removed = s.execute(delete(PortalOriginRow).where(PortalOriginRow.origin == origin))
        self._forget()
        return bool(removed.rowcount)  # type: ignore[attr-defined]

    def _forget(self) -> None:
        with self._lock:
            self._cached = None
            self._changes += 1
