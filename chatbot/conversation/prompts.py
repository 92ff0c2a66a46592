"""The condensing prompt (follow-up → standalone question); the answer prompt is the editable template."""

from __future__ import annotations

from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

CONDENSE_PROMPT = ChatPromptTemplate.from_messages(
    [
        (
            "system",
            "Rewrite the customer's last message as one standalone question that can be understood "
            "without the conversation. Reply with the question only.",
        ),
        MessagesPlaceholder("history"),
        ("human", "Last message: {question}\nStandalone question:"),
    ]
)
