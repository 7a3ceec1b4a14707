"""wxb.sklearn without scikit-learn installed says what to install (it said Python's bare
"No module named 'sklearn.base'"), as wxb's other optional extras do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.parametrize("missing", ["sklearn", "scipy"])
def test_wxb_sklearn_without_its_extra_names_the_install(missing):
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules[{missing!r}] = None  # as if not installed: import raises ImportError
        try:
            import wxb.sklearn
        except ImportError as error:
            print(error)
        else:
            print("imported")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    said = done.stdout.strip()
    assert said.startswith("wxb.sklearn needs scikit-learn: pip install scikit-learn"), said
    assert "'sklearn' extra" in said, said
