"""One base error type and one subclass per kind of mistake.

Each subclass also derives from the built-in exception a Python user would
catch for it (ValueError for bad values, RuntimeError for a failed run), so
``except ValueError`` keeps working around wxb calls.
"""


class WxbError(Exception):
    """Base of every error wxb raises on purpose."""


class ShapeError(WxbError, ValueError):
    """Operands whose shapes do not fit the equation (e.g. Z = W·X + b)."""


class DataError(WxbError, ValueError):
    """Input data that cannot be used: NaN/inf, strings, empty, mismatched lengths."""


class ConfigError(WxbError, ValueError):
    """An option or architecture that makes no sense."""


class ModelFileError(WxbError, ValueError):
    """A model file that is missing, corrupt, or not a wxb model."""


class TrainingError(WxbError, RuntimeError):
    """Training could not go on (the loss became NaN or infinite)."""
