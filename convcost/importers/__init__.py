"""Importers: models written in other formats, lowered to the same :class:`Program` as specs.

- :mod:`convcost.importers.onnx`: ONNX files (``read_onnx``), reading the graph and the
  initializer dims only.
- :mod:`convcost.importers.spec_writer`: any program written back as chain-language spec text
  (``program_to_spec``), its structure recovered by :mod:`convcost.importers.structure`.
"""
