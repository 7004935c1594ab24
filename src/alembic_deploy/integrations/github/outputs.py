"""Step outputs in GitHub Actions: ``name=value`` lines appended to the file ``$GITHUB_OUTPUT`` names."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


def write_outputs(values: Mapping[str, str], environ: Mapping[str, str] | None = None) -> bool:
    """Append ``values`` as step outputs when ``GITHUB_OUTPUT`` is set (in a GitHub Actions step);
    whether they were written (a file that cannot be written is a warning on stderr, never an error).
    A value is one line: newlines become spaces."""
    environ = os.environ if environ is None else environ
    target = environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    try:
        with open(target, "a", encoding="utf-8") as stream:
            for key, value in values.items():
                stream.write(f"{key}={' '.join(str(value).splitlines())}\n")
    except OSError as exc:  # the outputs are a courtesy: the step's exit code is what must survive
        print(f"warning: could not write the step outputs to $GITHUB_OUTPUT ({target}): {exc.strerror or exc}; "
              "the exit code is unchanged.", file=sys.stderr)
        return False
    return True
