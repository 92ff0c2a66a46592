"""The portal origins an admin allows: validated and normalised, stored beside the settings' ones, and read by the
frame-ancestors policy on the next request, without a restart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from chatbot.access.identity import SIGNED_TOKEN_PLACEHOLDER, portal_snippet
from chatbot.access.portal_origins import InvalidOriginError, PortalOriginStore, normalise_origin
from chatbot.web.portal import frame_policy
from knowledge.database import create_tables, open_database

SETTINGS_ORIGIN = "https://intranet.example.com"


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = open_database(f"sqlite:///{tmp_path / 'ragdesk.sqlite3'}")
    create_tables(engine)
    return sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> PortalOriginStore:
    return PortalOriginStore(sessions, [SETTINGS_ORIGIN], cache_s=3600)  # only a change here refreshes it


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("HTTPS://Portal.Example.COM/", "https://portal.example.com"),
        ("  https://portal.example.com  ", "https://portal.example.com"),
        ("https://portal.example.com:443", "https://portal.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://portal.example.com:8443", "https://portal.example.com:8443"),
        ("https://[::1]:8000", "https://[::1]:8000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_normalised_when_it_is_valid(text: str, origin: str) -> None:
    assert normalise_origin(text) == origin


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("example.com", "Give the scheme too: https://example.com"),
        ("localhost:8080", "Give the scheme too: https://localhost:8080"),
        ("https://a.com/path", "An origin has no path: write https://a.com"),
        ("https://a.com/?x=1", "An origin has no path"),
        ("javascript:alert(1)", "Only http:// and https:// origins can frame the chat, not javascript:"),
        ("ftp://a.com", "not ftp://"),
        ("https://*.example.com", "Wildcards are not allowed"),
        ("https://user:pw@a.com", "no user name or password"),
        ("https://a.com:99999", "no valid port number"),
        ("https://a.com; script-src evil.com", "is not a host name"),
        ("https://", "names no host"),
        ("", "Give an origin"),
    ],
)
def test_an_origin_is_refused_with_what_to_write_when_it_is_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidOriginError, match=re.escape(message)):
        normalise_origin(text)


def test_added_origins_are_listed_after_the_settings_ones_and_duplicates_are_ignored(
    store: PortalOriginStore,
) -> None:
    assert store.add("https://Portal.example.com/") == ("https://portal.example.com", True)
    assert store.add("https://portal.example.com:443") == ("https://portal.example.com", False)
    assert store.add(SETTINGS_ORIGIN) == (SETTINGS_ORIGIN, False)
    store.add("http://127.0.0.1:8080")
    assert [(o.origin, o.from_settings) for o in store.allowed()] == [
        (SETTINGS_ORIGIN, True),
        ("https://portal.example.com", False),
        ("http://127.0.0.1:8080", False),
    ]


def test_an_invalid_origin_changes_nothing(store: PortalOriginStore) -> None:
    with pytest.raises(InvalidOriginError):
        store.add("https://a.com/path")
    assert store.origins() == [SETTINGS_ORIGIN]


def test_a_settings_origin_cannot_be_removed_but_an_added_one_can(store: PortalOriginStore) -> None:
    store.add("https://portal.example.com")
    with pytest.raises(InvalidOriginError, match="RAGDESK_PORTAL__ALLOWED_ORIGINS"):
        store.remove(SETTINGS_ORIGIN)
    assert store.remove("https://portal.example.com")
    assert not store.remove("https://portal.example.com")
    assert store.origins() == [SETTINGS_ORIGIN]


def test_origins_are_kept_in_the_database_when_the_store_is_built_again(sessions: sessionmaker[Session]) -> None:
    PortalOriginStore(sessions, []).add("https://portal.example.com")
    assert PortalOriginStore(sessions, []).origins() == ["https://portal.example.com"]


def test_the_frame_policy_names_an_origin_on_the_next_request_after_it_is_added(store: PortalOriginStore) -> None:
    app = FastAPI()
    app.middleware("http")(frame_policy(store.origins))
    app.get("/embed/")(lambda: {})
    app.get("/admin/")(lambda: {})
    client = TestClient(app)
    assert client.get("/embed/").headers["Content-Security-Policy"] == f"frame-ancestors 'self' {SETTINGS_ORIGIN}"
    store.add("http://127.0.0.1:8080")
    policy = client.get("/embed/").headers["Content-Security-Policy"]
    assert policy == f"frame-ancestors 'self' {SETTINGS_ORIGIN} http://127.0.0.1:8080"
    assert client.get("/admin/").headers["Content-Security-Policy"] == "frame-ancestors 'self'"  # never framed
    store.remove("http://127.0.0.1:8080")
    assert client.get("/embed/").headers["Content-Security-Policy"] == f"frame-ancestors 'self' {SETTINGS_ORIGIN}"


def test_the_snippet_works_as_pasted_for_anonymous_visitors_and_names_the_token_only_when_signed() -> None:
    anonymous = portal_snippet("https://help.example.com", "lumora")
    assert anonymous == '<script src="https://help.example.com/widget.js" data-kb="lumora" defer></script>'
    signed = portal_snippet("https://help.example.com", "lumora", SIGNED_TOKEN_PLACEHOLDER)
    assert f'data-token="{SIGNED_TOKEN_PLACEHOLDER}"' in signed
