"""Importers: models written in other formats, lowered to the same :class:`Program` as specs.

- :mod:`convcost.importers.onnx`: ONNX files (``read_onnx``), reading the graph and the
  initializer dims only.
"""
