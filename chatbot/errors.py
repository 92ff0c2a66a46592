"""Errors whose messages are safe to show a customer (the base class lives with the knowledge package)."""

from knowledge.errors import RagdeskError

__all__ = [
    "ConversationNotFoundError",
    "InvalidFeedbackError",
    "InvalidQuestionError",
    "ModelUnavailableError",
    "RagdeskError",
]


class InvalidQuestionError(RagdeskError):
    """The question is empty or too long."""


class ConversationNotFoundError(RagdeskError):
    """The conversation does not exist (or belongs to someone else)."""


class ModelUnavailableError(RagdeskError):
    """The language model could not produce an answer."""


class InvalidFeedbackError(RagdeskError):
    """Feedback that names no turn, or a rating other than up/down."""
