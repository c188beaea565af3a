"""convcost: exact MACs, FLOPs, parameters and memory of convolutional layer chains."""

from __future__ import annotations

__version__ = "0.1.0"
