"""The Gradio pages: the customer's chat (/), the admin's tabs (/admin) and the portal widget (/embed). Each is
handed the services it shows; the chat panel and each admin tab live in modules of their own."""

from __future__ import annotations

import gradio as gr

from chatbot.services import Services
from chatbot.ui.access_tab import AccessTab
from chatbot.ui.chat_panel import ChatPanel
from chatbot.ui.conversations_tab import ConversationsTab
from chatbot.ui.knowledge_tab import KnowledgeTab, Uploader
from chatbot.ui.prompts_tab import PromptsTab
from chatbot.ui.rendering import escape_markdown

SOURCES_CSS = "details.source[open] .source-preview { display: none; }"  # an opened passage shows its start once
EMBED_COLOR_JS = """() => {
  const color = new URLSearchParams(window.location.search).get("color") || "";
  if (/^#[0-9a-fA-F]{6}$/.test(color)) {
    const style = document.createElement("style");
    style.textContent = `#send { background: ${color} !important; }`;
    document.head.appendChild(style);
  }
}"""


class ChatUI:
    """The three pages: the customer's chat, the admin's tabs, and the portal widget's compact chat."""

    def __init__(self, services: Services, uploader: Uploader, title: str = "RAGDesk") -> None:
        chat = services.chat
        self.portal = services.settings.portal
        self.chat_panel = ChatPanel(chat, self.portal)
        self.access_tab = AccessTab(services.api_keys, lambda: chat.default_kb)
        self.knowledge_tab = KnowledgeTab(services.knowledge, uploader, lambda: chat.default_kb)
        self.prompts_tab = PromptsTab(services.templates, services.drafts, chat)
        self.conversations_tab = ConversationsTab(services.conversations)
        self.title = title

    def build(self) -> gr.Blocks:
        """The customer page: chat only."""
        with gr.Blocks(title=self.title) as blocks:
            gr.Markdown(f"## {self.title}")
            self.chat_panel.render(blocks, None)
        return blocks

    def build_admin(self) -> gr.Blocks:
        """The admin page: chat, knowledge, prompts and conversations."""
        with gr.Blocks(title=f"{self.title} admin") as blocks:
            gr.Markdown(f"## {self.title} admin")
            with gr.Tabs():
                with gr.Tab("Chat", id="chat-tab") as chat_tab:
                    self.chat_panel.render(blocks, chat_tab)
                with gr.Tab("Knowledge", id="knowledge-tab", elem_id="knowledge-tab") as knowledge_tab:
                    self.knowledge_tab.render(knowledge_tab)
                with gr.Tab("Prompts", id="prompts-tab", elem_id="prompts-tab") as prompts_tab:
                    self.prompts_tab.render(prompts_tab)
                with gr.Tab("Conversations", id="history-tab", elem_id="history-tab") as history_tab:
                    self.conversations_tab.render(history_tab)
                with gr.Tab("Access", id="access-tab", elem_id="access-tab") as access_tab:
                    self.access_tab.render(access_tab)
        return blocks

    def build_embed(self) -> gr.Blocks:
        """The portal widget's page (/embed, inside an iframe): chat only, compact; the user comes from the
        portal's signed token when there is one."""
        with gr.Blocks(title=self.portal.title) as blocks:
            title = gr.Markdown(f"### {escape_markdown(self.portal.title)}", elem_id="embed-title")
            self.chat_panel.render(blocks, None, embed=True)
            blocks.load(self._embed_title, None, [title])
            blocks.load(None, None, None, js=EMBED_COLOR_JS)
        return blocks

    @property
    def embed_css(self) -> str:
        """The widget's colour on the embedded page (Gradio 6 takes css when the page is mounted)."""
        return f"#send {{ background: {self.portal.theme_color}; color: white; }} {SOURCES_CSS}"

    def _embed_title(self, request: gr.Request) -> str:
        return f"### {escape_markdown(request.query_params.get('title') or self.portal.title)}"
