"""Errors whose messages are safe to show a customer."""


class RagdeskError(Exception):
    """Base of errors shown to users as they are."""


class InvalidQuestionError(RagdeskError):
    """The question is empty or too long."""


class ConversationNotFoundError(RagdeskError):
    """The conversation does not exist (or belongs to someone else)."""


class ModelUnavailableError(RagdeskError):
    """The language model could not produce an answer."""
