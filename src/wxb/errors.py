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


class NotFoundError(WxbError, AttributeError):
    """A sub-module, parameter or buffer asked for by a path the model does not hold
    (``get_submodule`` and its kin; an AttributeError, as PyTorch raises)."""


class ModelFileError(WxbError, ValueError):
    """A model file that is missing, corrupt, or not a wxb model."""


class TrainingError(WxbError, RuntimeError):
    """Training could not go on (the loss became NaN or infinite)."""


class CheckpointError(WxbError, RuntimeError):
    """A checkpoint could not be written; training stopped, earlier checkpoints intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``fit`` after a whole step; ``str()`` says where and how to resume.

    A KeyboardInterrupt, so scripts stop as they expect. ``where``: "epoch 3, step 5
    of 40" or "the end of epoch 2"; ``checkpoint``: the file written (None without a
    checkpoint folder); ``history``: the figures so far; ``best_state``: early
    stopping's best weights so far (None without).
    """

    def __init__(
        self, message: str, where: str, checkpoint=None, history=None, best_state=None
    ) -> None:
        super().__init__(message)
        self.where, self.checkpoint = where, checkpoint
        self.history, self.best_state = history, best_state


def install_hint(packages: str, extra: str) -> str:
    """How to install an optional extra: its packages by name, which works where wxb came
    from a source checkout too ('wxb[extra]' only where wxb is on the package index)."""
    return f"pip install {packages} (wxb's {extra!r} extra)"


def unpacked_by_caller(depth: int = 2, after_call: bool = False) -> bool:
    """Whether the frame ``depth`` up (the caller of the ``__iter__`` asking) is unpacking
    the value, ``a, b = value`` or ``a, *rest = value``, rather than iterating it in a loop
    or a call (``for k in value``, ``set(value)``), read from its bytecode as
    ``missing_name`` reads an import's. ``after_call``: whether it unpacks what the call
    it is in returns (``a, b = reversed(value)``, asked by ``__reversed__``)."""
    import dis
    import sys

    frame = sys._getframe(depth)
    unpacking = (dis.opmap["UNPACK_SEQUENCE"], dis.opmap["UNPACK_EX"])
    if after_call:  # the instruction after the call (dis skips 3.11's inline caches)
        following = (i for i in dis.get_instructions(frame.f_code) if i.offset > frame.f_lasti)
        return getattr(next(following, None), "opcode", None) in unpacking
    code = frame.f_code.co_code
    return 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] in unpacking


def missing_name(module: str, name: str, message: str) -> Exception:
    """The error for a name a module's ``__getattr__`` (PEP 562) does not have: an
    AttributeError, or where the caller runs ``from module import name`` an ImportError
    with the same message. (Python turns that statement's AttributeError into its bare
    "cannot import name", dropping the message: the hint on what to write instead of a
    torch name, ``from wxb.nn import Flatten``, was lost in the form a port writes.)"""
    import dis
    import sys

    frame = sys._getframe(2)  # the caller of the module's __getattr__
    code = frame.f_code.co_code
    if 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] == dis.opmap["IMPORT_FROM"]:
        return ImportError(message, name=module)
    return AttributeError(message)
