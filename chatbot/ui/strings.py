"""The pages' own words in English and Chinese. The browser's language picks them (Gradio's I18n); what the server
writes into an answer (the sources' heading) follows the language of the customer's question."""

from __future__ import annotations

import gradio as gr
from gradio.i18n import I18nData

TEXT = {
    "en": {
        "placeholder": "Ask about returns, shipping, warranty, your account…",
        "send": "Send",
        "stop": "Stop",
        "new_conversation": "New conversation",
        "conversations": "Conversations",
        "delete_conversation": "Delete conversation",
        "knowledge_base": "Knowledge base",
        "assistant": "Assistant",
    },
    "zh": {
        "placeholder": "请输入您的问题：退货、配送、保修、账户…",
        "send": "发送",
        "stop": "停止",
        "new_conversation": "新对话",
        "conversations": "对话记录",
        "delete_conversation": "删除对话",
        "knowledge_base": "知识库",
        "assistant": "客服助手",
    },
}
SOURCES_HEADING = {"en": "Sources", "zh": "来源"}
TYPING = {"en": "Looking this up…", "zh": "正在查找…"}  # until the first words of the answer
WAITING = {  # many customers at once: the customer's place in line, updated while waiting
    "en": "Many customers are asking right now: you are number {position} in line (about {seconds} s).",
    "zh": "现在咨询的顾客较多：您排在第 {position} 位（大约 {seconds} 秒）。",
}
# The browser says zh-CN, zh-TW, zh-HK or zh; every one reads the Chinese words.
I18N = gr.I18n(en=TEXT["en"], **{code: TEXT["zh"] for code in ("zh", "zh-CN", "zh-TW", "zh-HK")})


def ui_text(key: str) -> I18nData:
    return I18N(key)


def waiting_text(position: int, estimated_s: float, language: str) -> str:
    """The customer's place in line, in the language of their question."""
    return WAITING.get(language, WAITING["en"]).format(position=position, seconds=max(1, round(estimated_s)))
