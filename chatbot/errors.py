"""The conversation side's errors. Every RagdeskError's message is safe to show the person who caused it (a
customer or an admin): the outermost layer (API route, UI handler, CLI) shows it as it is. Anything else that
escapes is internal: logged with its traceback, and the person sees a generic apology."""

from knowledge.errors import RagdeskError

__all__ = [
    "AnswerStoppedError",
    "BusyError",
    "ConversationBusyError",
    "ConversationNotFoundError",
    "InvalidFeedbackError",
    "InvalidIdentityError",
    "InvalidQuestionError",
    "InvalidTemplateError",
    "ModelUnavailableError",
    "RagdeskError",
    "ServerStoppingError",
    "TemplateVersionNotFoundError",
]


class InvalidQuestionError(RagdeskError):
    """The question is empty or too long."""


class ConversationNotFoundError(RagdeskError):
    """The conversation does not exist (or belongs to someone else)."""


class ModelUnavailableError(RagdeskError):
    """The language model could not produce an answer."""


class ServerStoppingError(ModelUnavailableError):
    """The server is shutting down: the answer being written was stopped (nothing of it saved)."""


class BusyError(RagdeskError):
    """Too many customers at once: the question was not answered (nor stored); ask again after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int = 30) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConversationBusyError(RagdeskError):
    """The conversation is already answering a question (a second one sent before the first was answered)."""


class AnswerStoppedError(RagdeskError):
    """The customer stopped the answer before any of it was written (nothing saved)."""


class InvalidFeedbackError(RagdeskError):
    """Feedback that names no turn, or a rating other than up/down."""


class InvalidTemplateError(RagdeskError):
    """A template that cannot be saved; `problems` lists every reason, each specific."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


class TemplateVersionNotFoundError(RagdeskError):
    """No such version of this knowledge base's template."""


class InvalidIdentityError(RagdeskError):
    """The portal's token is expired, forged or malformed."""
