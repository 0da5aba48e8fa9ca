"""Evaluation: likelihood estimates and sample-quality scores, one concept per module.

Import the module you need, e.g. ``from scratchgen.evaluation import ais``.
"""
