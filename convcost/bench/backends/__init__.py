"""Backends of ``--bench``: what executes the models being timed.

``numpy`` (the default) runs convcost's own NumPy kernels (:mod:`convcost.bench.executor`);
``torch`` and ``torch-cuda`` run the PyTorch modules of ``convcost export --to torch``
(:mod:`convcost.bench.backends.torch`), on the CPU or a CUDA device. torch is never a
dependency: asking for a torch backend without it is a usage error naming the pip command.
"""

from __future__ import annotations

from convcost.errors import UsageError

#: The backends ``--backend`` accepts; the first is the default.
BACKENDS = ("numpy", "torch", "torch-cuda")
#: How to get torch when it is missing.
TORCH_INSTALL = "pip install torch"


def check_backend(name: str) -> None:
    """Raise :class:`~convcost.errors.UsageError` unless backend ``name`` can run here:
    known, torch importable for the torch backends, a CUDA device for ``torch-cuda``."""
    if name not in BACKENDS:
        raise UsageError(f"unknown backend '{name}'; expected one of {', '.join(BACKENDS)}",
                         "--backend")
    if name == "numpy":
        return
    try:
        import torch
    except ImportError:
        raise UsageError(f"--backend {name} needs PyTorch, which is not installed; install it "
                         f"with: {TORCH_INSTALL}", "--backend") from None
    if name == "torch-cuda" and not torch.cuda.is_available():
        raise UsageError("--backend torch-cuda needs a CUDA device, but torch.cuda.is_available() "
                         "is False here; use --backend torch for the CPU", "--backend")
