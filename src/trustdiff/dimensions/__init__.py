"""Dimension registry: which judge and which metrics each trust dimension uses."""

from trustdiff.dimensions.base import Dimension, MetricDef
from trustdiff.dimensions.safety import SAFETY

DIMENSIONS: dict[str, Dimension] = {SAFETY.name: SAFETY}

__all__ = ["DIMENSIONS", "Dimension", "MetricDef"]
