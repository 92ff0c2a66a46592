"""Who is asking: admin passwords (scrypt hashes), and admin access for the UI.

python -m chatbot.access.admin_login hash-password     # prints a hash for RAGDESK_ADMIN__PASSWORD_HASH
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import logging
import secrets
import sys
from collections.abc import Callable

from chatbot.settings import Settings

logger = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, **SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def admin_login(settings: Settings) -> Callable[[str, str], bool] | None:
    """Gradio's login check for /admin: the hashed password (any user name), or None when login is off
    (a trusted proxy header, or local development on loopback)."""
    stored = settings.admin.password_hash
    if stored is not None:
        return lambda _user, password: verify_password(password, stored.get_secret_value())
    if settings.admin.trusted_header or settings.on_loopback:
        return None
    logger.warning("no admin password or trusted header is set and the server is not on loopback: /admin is closed")
    return lambda _user, _password: False


def admin_from_header(settings: Settings) -> Callable[..., str | None] | None:
    """Gradio auth dependency: the admin name a trusted reverse proxy put in the configured header."""
    header = settings.admin.trusted_header
    if not header or settings.admin.password_hash is not None:
        return None
    return lambda request: request.headers.get(header) or None


def main(argv: list[str]) -> int:
    if argv[:1] != ["hash-password"]:
        print(__doc__, file=sys.stderr)
        return 2
    password = getpass.getpass("admin password: ")
    if len(password) < 10 or password != getpass.getpass("again: "):
        print("passwords differ or are shorter than 10 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
