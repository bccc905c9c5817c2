"""The one exception type of the lab."""


class LabError(Exception):
    """A lab step failed; the message is one line saying what and what to do."""
