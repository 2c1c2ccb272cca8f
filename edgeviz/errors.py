"""One exception type for every error a user can fix; the CLI prints it as one line."""


class EdgevizError(Exception):
    """A problem with the user's input or environment, with what to do about it."""
