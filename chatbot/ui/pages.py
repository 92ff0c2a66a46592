"""The Gradio pages: the customer's chat (/), the admin's tabs (/admin) and the portal widget (/embed). Each is
handed the services it shows; the chat panel and each admin tab live in modules of their own."""

from __future__ import annotations

import gradio as gr

from chatbot.services import Services
from chatbot.ui.access_tab import AccessTab
from chatbot.ui.chat_panel import ChatPanel
from chatbot.ui.conversations_tab import ConversationsTab
from chatbot.ui.insights_tab import InsightsTab
from chatbot.ui.knowledge_tab import KnowledgeTab, Uploader
from chatbot.ui.prompts_tab import PromptsTab
from chatbot.ui.rendering import escape_markdown
from chatbot.ui.theme import brand_override_js, brand_theme

SOURCES_CSS = "details.source[open] .source-preview { display: none; }"  # an opened passage shows its start once
EMBED_CSS = (  # the widget's frame is small: no page margins, the chat fills it (see chat_panel's height)
    ".gradio-container { padding: 0 !important; } .gradio-container .main { padding: 4px 8px !important; } "
    "#embed-title h3 { margin: 2px 0 2px 28px !important; }"
)


class ChatUI:
    """The three pages: the customer's chat, the admin's tabs, and the portal widget's compact chat."""

    def __init__(self, services: Services, uploader: Uploader, title: str = "RAGDesk") -> None:
        chat = services.chat
        self.portal = services.settings.portal
        self.chat_panel = ChatPanel(chat, self.portal)
        self.access_tab = AccessTab(services.api_keys, lambda: chat.default_kb, services.portal_origins)
        self.knowledge_tab = KnowledgeTab(services.knowledge, uploader, lambda: chat.default_kb)
        self.prompts_tab = PromptsTab(services.templates, services.drafts, chat, services.insights.gate)
        self.insights_tab = InsightsTab(services.insights, chat.knowledge_base_names)
        self.conversations_tab = ConversationsTab(services.conversations, services.insights.sets)
        self.title = title

    def build(self) -> gr.Blocks:
        """The customer page: chat only."""
        with gr.Blocks(title=self.title) as blocks:
            gr.Markdown(f"## {self.title}")
            self.chat_panel.render(blocks, None)
        return blocks

    def build_admin(self) -> gr.Blocks:
        """The admin page: chat, knowledge, prompts, conversations, insights and access."""
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
                with gr.Tab("Insights", id="insights-tab", elem_id="insights-tab") as insights_tab:
                    self.insights_tab.render(insights_tab)
                with gr.Tab("Access", id="access-tab", elem_id="access-tab") as access_tab:
                    self.access_tab.render(access_tab)
        return blocks

    def build_embed(self) -> gr.Blocks:
        """The portal widget's page (/embed, inside an iframe): chat only, compact; the user comes from the
        portal's signed token when there is one."""
        with gr.Blocks(title=self.portal.title) as blocks:
            title = gr.Markdown(f"### {escape_markdown(self.portal.title)}", elem_id="embed-title")
            self.chat_panel.render(blocks, None, embed=True)
            blocks.load(self._embed_title, None, [title], queue=False, show_progress="hidden")
            blocks.load(None, None, None, js=brand_override_js())
        return blocks

    @property
    def embed_css(self) -> str:
        """The widget's compact page (Gradio 6 takes css when the page is mounted)."""
        return f"{EMBED_CSS} {SOURCES_CSS}"

    @property
    def theme(self) -> gr.themes.Base:
        """The company's colour on every page."""
        return brand_theme(self.portal.theme_color)

    def _embed_title(self, request: gr.Request) -> str:
        return f"### {escape_markdown(request.query_params.get('title') or self.portal.title)}"
