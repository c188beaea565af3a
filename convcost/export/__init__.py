"""Exporting programs as source code for other frameworks (``convcost export``).

Exporters read :class:`~convcost.model.program.Program` values and write text; they never
import the framework they write for.
"""

from __future__ import annotations

from convcost.export.torch import TorchExport, export_torch

__all__ = ["TorchExport", "export_torch"]
