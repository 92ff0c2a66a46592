"""The Access tab (admin): API keys (create, shown once; revoke) and the portal snippet to copy."""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatbot.access.api_keys import ApiKeyStore
from chatbot.access.identity import portal_snippet

KEY_COLUMNS = ["Id", "Name", "Scope", "Starts with", "Created", "Revoked"]


class AccessTab:
    def __init__(self, api_keys: ApiKeyStore, default_kb: Any) -> None:
        self.api_keys = api_keys
        self.default_kb = default_kb

    def render(self, tab: gr.Tab) -> None:
        gr.Markdown("### API keys\nKeys are stored hashed: a new key is shown once, copy it now.")
        with gr.Row():
            name = gr.Textbox(label="Name", placeholder="e.g. portal backend", elem_id="key-name")
            scope = gr.Radio(["chat", "admin"], value="chat", label="Scope", elem_id="key-scope")
            create = gr.Button("Create key", variant="primary", elem_id="key-create")
        created = gr.Textbox(label="New key (shown once)", interactive=False, buttons=["copy"], elem_id="key-new")
        keys = gr.Dataframe(headers=KEY_COLUMNS, interactive=False, elem_id="keys")
        with gr.Row():
            key_id = gr.Number(label="Key id", precision=0, elem_id="key-id")
            revoke = gr.Button("Revoke", variant="stop", elem_id="key-revoke")
        message = gr.Markdown(elem_id="key-message")
        gr.Markdown(
            "### Portal widget\nPaste this into the portal's pages. Your portal signs a token per signed-in user "
            "(HS256 JWT with `sub`, `name`, `exp`, using `RAGDESK_PORTAL__JWT_SECRET`); leave `data-token` out "
            "for anonymous chats. Only origins in `RAGDESK_PORTAL__ALLOWED_ORIGINS` may frame the chat."
        )
        code = gr.Code(language="html", interactive=False, elem_id="widget-snippet")
        tab.select(self._on_show, None, [keys, code])
        create.click(self._on_create, [name, scope], [created, keys, message])
        revoke.click(self._on_revoke, [key_id], [keys, message])

    def _rows(self) -> list[list[Any]]:
        return [
            [k.id, k.name, k.scope, k.shown + "…", f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "", k.revoked]
            for k in self.api_keys.list()
        ]

    def _on_show(self, request: gr.Request) -> tuple[Any, ...]:
        server = str(request.request.base_url).rstrip("/").removesuffix("/admin") if request.request else ""
        return self._rows(), portal_snippet(server, self.default_kb())

    def _on_create(self, name: str, scope: str) -> tuple[Any, ...]:
        key, info = self.api_keys.create(name, scope)  # type: ignore[arg-type]
        return key, self._rows(), f"Created key {info.id} ({info.scope})."

    def _on_revoke(self, key_id: float | None) -> tuple[Any, ...]:
        if key_id is None:
            return self._rows(), "Give the id of the key to revoke."
        done = self.api_keys.revoke(int(key_id))
        return self._rows(), f"Revoked key {int(key_id)}." if done else f"No active key {int(key_id)}."
