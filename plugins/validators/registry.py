"""The known validators, by name: the default set and selection from config.

The config names validators (`gateway.validators: [non_empty, refusal, ...]`); `build_validators`
turns the names into fresh instances, in the given order. Adding a validator means adding its
class here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from plugins.validators.base import Validator
from plugins.validators.content import NonEmptyValidator, RefusalValidator, RepetitionValidator
from plugins.validators.language import LanguageValidator
from plugins.validators.structure import CodeSyntaxValidator, TruncationValidator
from plugins.validators.structured import JsonModeValidator, ToolCallValidator
from plugins.validators.task import ClassificationValidator, LengthValidator, SummarizationValidator

VALIDATORS: dict[str, Callable[[], Validator]] = {
    "non_empty": NonEmptyValidator,
    "refusal": RefusalValidator,
    "truncation": TruncationValidator,
    "language": LanguageValidator,
    "code_syntax": CodeSyntaxValidator,
    "json_mode": JsonModeValidator,
    "tool_calls": ToolCallValidator,
    "repetition": RepetitionValidator,
    "length": LengthValidator,
    "classification": ClassificationValidator,
    "summarization": SummarizationValidator,
}
"""Name -> factory, in the default order."""


def default_validators() -> list[Validator]:
    """One fresh instance of every known validator."""
    return [factory() for factory in VALIDATORS.values()]


def build_validators(names: Sequence[str] | None) -> list[Validator]:
    """Validators by name, in the given order; None means `default_validators()`, [] none.

    Raises ValueError for an unknown or repeated name (a config error, reported at load time)."""
    if names is None:
        return default_validators()
    if isinstance(names, str):
        raise ValueError("validators must be a list of names, not a string")
    unknown = [name for name in names if name not in VALIDATORS]
    if unknown:
        raise ValueError(
            f"unknown validator(s) {', '.join(map(repr, unknown))}; known: {', '.join(VALIDATORS)}"
        )
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ValueError(f"validator(s) listed more than once: {', '.join(map(repr, repeated))}")
    return [VALIDATORS[name]() for name in names]
