"""The Access tab (admin): API keys (create, shown once; revoke), the portal origins allowed to frame the chat,
and the widget snippet to paste into the portal."""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatbot.access.api_keys import ApiKeyStore
from chatbot.access.identity import SIGNED_TOKEN_PLACEHOLDER, portal_snippet
from chatbot.access.portal_origins import PortalOriginStore
from chatbot.errors import RagdeskError
from chatbot.ui.rendering import escape_markdown

KEY_COLUMNS = ["Id", "Name", "Scope", "Starts with", "Created", "Revoked"]
ORIGIN_COLUMNS = ["Origin", "Source"]
NO_ORIGIN_WARNING = (
    "⚠️ **No portal origin is allowed yet:** a portal page framing the widget will show 'refused to connect'. "
    "Allow the portal's origin below."
)
SIGNED_HELP = """**Signed-in users** (optional): to keep a user's conversations across devices, your portal's server
signs a token for each page it serves and puts it in `data-token`. The token is an HS256 JWT with `sub` (the user's
id), `name` (shown in the greeting) and `exp`, signed with the secret in `RAGDESK_PORTAL__JWT_SECRET`; for example,
in Python with PyJWT:

```python
token = jwt.encode({"sub": user.id, "name": user.name, "exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
```"""


class AccessTab:
    def __init__(self, api_keys: ApiKeyStore, default_kb: Any, origins: PortalOriginStore | None = None) -> None:
        self.api_keys = api_keys
        self.default_kb = default_kb
        self.origins = origins

    def render(self, tab: gr.Tab) -> None:
        keys = self._render_keys()
        shown: list[Any] = [keys]
        if self.origins is not None:
            shown += self._render_origins()
        gr.Markdown(
            "### Portal widget\n**Paste this into the portal's pages.** It works as it is, for anonymous visitors "
            "(each browser keeps its own conversations)."
        )
        shown.append(gr.Code(language="html", interactive=False, elem_id="widget-snippet"))
        gr.Markdown(SIGNED_HELP)
        shown.append(gr.Code(language="html", interactive=False, elem_id="widget-snippet-signed"))
        tab.select(self._on_show, None, shown)

    def _render_keys(self) -> gr.Dataframe:
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
        create.click(self._on_create, [name, scope], [created, keys, message])
        revoke.click(self._on_revoke, [key_id], [keys, message])
        return keys

    def _render_origins(self) -> list[Any]:
        """The allowed origins (status, table, the removable ones); the controls to allow and remove one."""
        gr.Markdown("### Portal origins\nOnly pages from these origins may show the chat widget.")
        status = gr.Markdown(elem_id="origins-status")
        table = gr.Dataframe(headers=ORIGIN_COLUMNS, interactive=False, elem_id="origins")
        with gr.Row():
            new = gr.Textbox(label="Portal origin", placeholder="https://portal.example.com", elem_id="origin-new")
            allow = gr.Button("Allow origin", variant="primary", elem_id="origin-allow")
        with gr.Row():
            removable = gr.Dropdown(label="Origin added here", choices=[], elem_id="origin-choice")
            remove = gr.Button("Remove origin", variant="stop", elem_id="origin-remove")
        message = gr.Markdown(elem_id="origin-message")
        shown = [status, table, removable]
        allow.click(self._on_allow, [new], [*shown, message, new])
        new.submit(self._on_allow, [new], [*shown, message, new])
        remove.click(self._on_remove, [removable], [*shown, message])
        return shown

    def _rows(self) -> list[list[Any]]:
        return [
            [k.id, k.name, k.scope, k.shown + "…", f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "", k.revoked]
            for k in self.api_keys.list()
        ]

    def _origin_parts(self) -> list[Any]:
        """The status line, the table and the dropdown of the origins an admin added."""
        allowed = self.origins.allowed() if self.origins else []
        status = NO_ORIGIN_WARNING if not allowed else f"{len(allowed)} origin(s) may frame the widget."
        rows = [[o.origin, "from settings" if o.from_settings else "added by admin"] for o in allowed]
        added = [o.origin for o in allowed if not o.from_settings]
        return [status, rows, gr.Dropdown(choices=added, value=None)]

    def _on_show(self, request: gr.Request) -> tuple[Any, ...]:
        server = str(request.request.base_url).rstrip("/").removesuffix("/admin") if request.request else ""
        kb = self.default_kb()
        origins = self._origin_parts() if self.origins else []
        signed = portal_snippet(server, kb, SIGNED_TOKEN_PLACEHOLDER)
        return self._rows(), *origins, portal_snippet(server, kb), signed

    def _on_create(self, name: str, scope: str) -> tuple[Any, ...]:
        key, info = self.api_keys.create(name, scope)  # type: ignore[arg-type]
        return key, self._rows(), f"Created key {info.id} ({info.scope})."

    def _on_revoke(self, key_id: float | None) -> tuple[Any, ...]:
        if key_id is None:
            return self._rows(), "Give the id of the key to revoke."
        done = self.api_keys.revoke(int(key_id))
        return self._rows(), f"Revoked key {int(key_id)}." if done else f"No active key {int(key_id)}."

    def _on_allow(self, text: str) -> tuple[Any, ...]:
        assert self.origins is not None  # rendered only with a store
        try:
            origin, added = self.origins.add(text)
        except RagdeskError as e:
            return *self._origin_parts(), escape_markdown(str(e)), gr.skip()
        done = "may now frame the widget" if added else "was already allowed"
        return *self._origin_parts(), f"{escape_markdown(origin)} {done}.", ""

    def _on_remove(self, origin: str | None) -> tuple[Any, ...]:
        assert self.origins is not None
        if not origin:
            return *self._origin_parts(), "Choose the origin to remove."
        try:
            removed = self.origins.remove(origin)
        except RagdeskError as e:
            return *self._origin_parts(), escape_markdown(str(e))
        done = "may no longer frame the widget" if removed else "was not allowed"
        return *self._origin_parts(), f"{escape_markdown(origin)} {done}."
