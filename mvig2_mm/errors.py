"""The project's own errors: raised for a mistake of the user's, with a
message that names the problem and its fix (the tools print it as one line).
Any other exception is a bug and keeps its traceback."""


class ConfigError(ValueError):
    """A config value that cannot work: an unknown arch, out_indices out of
    range, a teacher without a checkpoint, ... (a ``ValueError``, so code
    that catches those keeps working)."""
