"""Auto routing: send routine prompts to a small installed model and complex ones to a big one.

`classify(text)` decides from cheap features (app/core/routing/features.py) with weights and a
threshold fitted on labelled prompts (resources/routing/); `pick_pair(models)` finds a small
and a big model among the installed ones; `Router` chooses per prompt. No Qt, no engine.
"""

from app.core.routing.classifier import Classifier, Decision, classify, default_classifier
from app.core.routing.pair import AutoPair, ModelSide, RouteChoice, Router, pick_pair

__all__ = [
    "AutoPair",
    "Classifier",
    "Decision",
    "ModelSide",
    "RouteChoice",
    "Router",
    "classify",
    "default_classifier",
    "pick_pair",
]
