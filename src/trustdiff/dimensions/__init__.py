"""Dimension registry: which judges and which metrics each trust dimension uses."""

from trustdiff.dimensions.base import Dimension, JudgedSample, MetricDef, RatioMetricDef
from trustdiff.dimensions.bias import BIAS
from trustdiff.dimensions.capability import CAPABILITY
from trustdiff.dimensions.ethics import ETHICS
from trustdiff.dimensions.ood import OOD
from trustdiff.dimensions.privacy import PRIVACY
from trustdiff.dimensions.safety import SAFETY
from trustdiff.dimensions.toxicity import TOXICITY

DIMENSIONS: dict[str, Dimension] = {
    d.name: d for d in (SAFETY, TOXICITY, BIAS, ETHICS, PRIVACY, OOD, CAPABILITY)
}

__all__ = ["DIMENSIONS", "Dimension", "JudgedSample", "MetricDef", "RatioMetricDef"]
