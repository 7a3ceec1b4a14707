"""``python -m wxb``: the ``wxb`` command, for an environment whose scripts folder is
not on PATH (``.venv/bin/python -m wxb train`` is ``.venv/bin/wxb train``)."""

from wxb.cli import entry

if __name__ == "__main__":
    entry()
