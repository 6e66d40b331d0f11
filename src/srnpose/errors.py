"""The one exception type that means "the user gave us something wrong"."""


class UserError(Exception):
    """A mistake in user input (flag, file, config). The CLI prints it as one line and exits 2."""
