"""``python -m convcost``."""

from __future__ import annotations

from convcost.cli import main

main()
