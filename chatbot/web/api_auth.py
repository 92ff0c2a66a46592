"""Who calls the HTTP API: an API key on each request (`Authorization: Bearer KEY` or `X-API-Key`) and its scope."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException

from chatbot.access.api_keys import ApiKeyStore, Caller, Scope

LOCAL_CALLER = Caller("local", "chat")


def authenticator(api_keys: ApiKeyStore, on_loopback: bool) -> Callable[[Scope], Any]:
    """A FastAPI dependency per scope: `Authorization: Bearer KEY` or `X-API-Key: KEY`. With no key anywhere
    and the server on loopback, chat calls are open (local development)."""

    def needs(scope: Scope) -> Any:
        def caller(
            authorization: Annotated[str | None, Header()] = None,
            x_api_key: Annotated[str | None, Header()] = None,
        ) -> Caller:
            key = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
            if scope == "chat" and on_loopback and not api_keys.any_configured():
                return LOCAL_CALLER  # whatever key a client sends (the openai client always sends one)
            if not key:
                raise HTTPException(401, "An API key is required (Authorization: Bearer KEY).")
            found = api_keys.verify(key)
            if found is None:
                raise HTTPException(401, "This API key is not valid (unknown or revoked).")
            if not found.may(scope):
                raise HTTPException(403, f"This API key is for {found.scope}; this call needs an admin key.")
            return found

        return Depends(caller)

    return needs


def owner_of(caller: Caller, user: str | None) -> str:
    return f"{caller.identity}:user:{user}" if user else caller.identity
