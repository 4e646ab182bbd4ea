"""The project's exceptions; the API and CLI turn them into messages at the edge."""


class FaqbotError(Exception):
    """Base class: a problem a person can fix, with a message that says how."""


class CorpusError(FaqbotError):
    """The corpus folder has a file, entry or field that does not validate."""


class IndexMissingError(FaqbotError):
    """No index has been built yet."""


class IndexMismatchError(FaqbotError):
    """The index on disk was built from another corpus, model or settings."""


class ModelError(FaqbotError):
    """The embedding model cannot be loaded."""
