"""``python -m wxb``: the ``wxb`` command, for an environment whose scripts folder is
not on PATH (``.venv/bin/python -m wxb train`` is ``.venv/bin/wxb train``)."""

import sys

from wxb.cli import main

if __name__ == "__main__":
    sys.exit(main())
