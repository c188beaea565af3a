"""Plots (the ``plot`` extra, matplotlib): a device's roofline with a model's layers on it,
live activation memory over the steps, and per-layer MACs and predicted time.

:mod:`convcost.plots.data` computes what each plot shows (no matplotlib needed);
:mod:`convcost.plots.draw` draws it.
"""
