"""Answer validators and the confidence they add up to.

Each validator scores one answer 0-10 or abstains (`base.py`); `registry.py` builds them by name;
`confidence.py` combines their results into the 0-10 confidence that the cascade and the gate use.
"""

from plugins.validators.base import PASS_SCORE, Validator, ValidatorResult
from plugins.validators.confidence import NEUTRAL, Scorer, Scoring, combine
from plugins.validators.registry import VALIDATORS, build_validators, default_validators

__all__ = [
    "NEUTRAL",
    "PASS_SCORE",
    "VALIDATORS",
    "Scorer",
    "Scoring",
    "Validator",
    "ValidatorResult",
    "build_validators",
    "combine",
    "default_validators",
]
