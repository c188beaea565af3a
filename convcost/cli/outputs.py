"""Guards for the commands that write a file with ``-o`` (import, export)."""

from __future__ import annotations

import os
from collections.abc import Iterable


def overwritten_input(output: str | None, sources: Iterable[str]) -> str | None:
    """The input among ``sources`` (paths as analysed) that writing ``output`` would replace,
    or None: ``convcost import model.onnx -o model.onnx`` must not destroy the model."""
    if output is None or not os.path.exists(output):
        return None
    for source in dict.fromkeys(sources):
        try:
            if os.path.isfile(source) and os.path.samefile(source, output):
                return source
        except OSError:  # vanished or unreadable since it was read: not the output then
            continue
    return None


def refusal(output: str, source: str) -> str:
    """The located message for an ``-o`` that names one of the inputs."""
    return (f"{output}: error: refusing to write over the input '{source}'; give another "
            f"-o file")
