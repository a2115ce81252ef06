"""The one exception type for bad user input (spec values, files, environments)."""


class UserInputError(ValueError):
    """Bad input from the user: the runner prints its one-line message and exits with status 2."""
