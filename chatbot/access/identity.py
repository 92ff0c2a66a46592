"""Who is chatting: a portal user from a signed token (HMAC JWT), or an anonymous browser."""

from __future__ import annotations

import html
import re
import time
import uuid
from dataclasses import dataclass

import jwt

from chatbot.errors import InvalidIdentityError

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Identity:
    owner: str  # what conversations are stored under
    display_name: str = ""


def portal_user(token: str, secret: str | None) -> Identity:
    """The user a portal vouches for: an HS256 JWT with `sub` (user id), `exp` and optionally `name`."""
    if not secret:
        raise InvalidIdentityError("This chat is not set up for signed-in users (no portal secret configured).")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
    except jwt.ExpiredSignatureError as e:
        raise InvalidIdentityError("Your sign-in has expired. Please reload the page in the portal.") from e
    except jwt.InvalidTokenError as e:
        raise InvalidIdentityError("Your sign-in could not be verified. Please reload the page in the portal.") from e
    return Identity(f"user:{claims['sub']}", str(claims.get("name", ""))[:100])


def browser_visitor(browser_id: str | None) -> Identity:
    """An anonymous visitor, known by a random id kept in the browser. Anything but a UUID is replaced, so a
    browser cannot pose as a portal user or an API key."""
    if browser_id and _UUID.match(browser_id):
        return Identity(browser_id)
    return Identity(str(uuid.uuid4()))


def sign_portal_token(secret: str, user_id: str, name: str = "", ttl_s: int = 3600) -> str:
    """What a portal does on its side (documented in the README; used by tests and the admin snippet)."""
    now = int(time.time())
    return jwt.encode({"sub": user_id, "name": name, "iat": now, "exp": now + ttl_s}, secret, algorithm="HS256")


SIGNED_TOKEN_PLACEHOLDER = "<token your portal signs for the signed-in user>"


def portal_snippet(server_url: str, kb: str, token: str | None = None) -> str:
    """What an admin pastes into the portal page: the widget script for the knowledge base. Without `token` it
    works as pasted, for anonymous visitors; with it, the chat is the signed-in user's (see sign_portal_token)."""
    token_attribute = f' data-token="{token}"' if token else ""
    source = html.escape(f"{server_url}/widget.js")
    return f'<script src="{source}" data-kb="{html.escape(kb)}"{token_attribute} defer></script>'
