"""Errors users can fix. Kept import-free so light tasks (gates) start fast."""


class DataError(ValueError):
    """The data or a parameter cannot be used as given; the message says how to fix it."""
