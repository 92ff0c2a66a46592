"""Errors whose messages are safe to show the person who caused them (customer or admin)."""


class RagdeskError(Exception):
    """Base of errors shown to users as they are."""


class KnowledgeBaseNotFoundError(RagdeskError):
    """No knowledge base has this name."""


class KnowledgeBaseNameError(RagdeskError):
    """A knowledge-base name is empty, too long, has control characters, or is taken."""


class KnowledgeBaseBusyError(RagdeskError):
    """The knowledge base has an upload in progress; renaming or deleting it must wait."""


class DocumentNotFoundError(RagdeskError):
    """No document has this name in the knowledge base."""


class VectorStoreUnavailableError(RagdeskError):
    """The vector store (a Chroma server) did not answer or refused a write; nothing of the write was kept."""
