"""Task types: what a call is for, the prompt the legacy route wraps it in, and its default tier.

The built-ins are what existing in-house callers send on `/v1/completion`; config may override
any field or add new types (`gateway.task_types`). The tier here is only the starting
assignment: the learned state's assignment table wins once the learning worker has written one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskType:
    name: str
    prompt: str
    tier: str = "fast"
    escalation_threshold: float | None = None
    max_escalations: int | None = None
    max_tokens: int | None = None


BUILTIN: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType(
            "code_explanation",
            "You are a senior engineer. Explain what the given code does, clearly and "
            "accurately, for a developer who has not seen it. Answer in {language}.",
            "fast",
        ),
        TaskType(
            "code_generation",
            "You are an expert programmer. Write correct, idiomatic, complete code for the "
            "request. Put the code in one fenced code block; add a brief explanation only if needed. "
            "Answer in {language}.",
            "medium",
        ),
        TaskType(
            "code_review",
            "You are a careful code reviewer. Review the given code: list concrete bugs, risks "
            "and improvements, most important first. Answer in {language}.",
            "medium",
        ),
        TaskType(
            "analysis",
            "You are an analyst. Analyse the input thoroughly and give a structured, well-reasoned "
            "answer. Answer in {language}.",
            "medium",
        ),
        TaskType(
            "summarization",
            "Summarize the input concisely, keeping its key facts, names and numbers. The "
            "summary must be much shorter than the input. Answer in {language}.",
            "fast",
        ),
        TaskType("translation", "Translate the input into {language}. Output only the translation.", "fast"),
        TaskType(
            "classification",
            "Classify the input. Answer with exactly one of the allowed labels and nothing else.",
            "fast",
        ),
        TaskType(
            "extraction",
            "Extract the requested information from the input. Answer with only the extracted "
            "data, as JSON when the request asks for structure. Answer in {language}.",
            "fast",
        ),
        TaskType("chat", "You are a helpful assistant. Answer in {language}.", "fast"),
        TaskType("agentic", "You are a capable assistant working with tools.", "large"),
    )
}

LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ru": "Russian",
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "ar": "Arabic",
}


def language_name(code: str | None) -> str:
    if not code:
        return "the language of the input"
    return LANGUAGE_NAMES.get(code.lower().split("-")[0], code)


STANDARD_TIERS = ("fast", "medium", "large", "external")


def nearest_tier(tier: str, tiers: list[str]) -> str:
    """`tier` if configured, else the next stronger configured tier (else the strongest one).

    The built-in task types name the standard tiers; a gateway configured with fewer tiers (say
    fast and large) must still route every task type somewhere sensible, never to a missing tier.
    """
    if tier in tiers:
        return tier
    rank = STANDARD_TIERS.index(tier) if tier in STANDARD_TIERS else len(STANDARD_TIERS)
    stronger = [t for t in tiers if t in STANDARD_TIERS and STANDARD_TIERS.index(t) > rank]
    return stronger[0] if stronger else tiers[-1]


def build_task_types(overrides: dict[str, Any], tiers: list[str] | None = None) -> dict[str, TaskType]:
    """The built-ins with config overrides applied (`overrides`: name -> TaskTypeConfig), each task
    type's tier mapped onto the configured `tiers`."""
    types = dict(BUILTIN)
    for name, cfg in overrides.items():
        fields = {k: v for k, v in cfg.model_dump().items() if v is not None}
        types[name] = (
            replace(types[name], **fields)
            if name in types
            else TaskType(
                name=name, prompt=fields.pop("prompt", "You are a helpful assistant. Answer in {language}."), **fields
            )
        )
    if tiers:
        types = {name: replace(task, tier=nearest_tier(task.tier, tiers)) for name, task in types.items()}
    return types


# --- the cheap local classifier ----------------------------------------------------------------

_CODE = re.compile(
    r"```|^\s*(def|class|import|from \S+ import|function|const|let|public|#include|fn)\b|[{};]\s*$", re.MULTILINE
)
_KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("summarization", re.compile(r"\b(summari[sz]e|summary|tl;?dr|zusammenfass|résum)", re.I)),
    ("translation", re.compile(r"\b(translate|translation|übersetz|tradu[cz])", re.I)),
    ("classification", re.compile(r"\b(classify|categori[sz]e|which (category|label))\b", re.I)),
    ("extraction", re.compile(r"\b(extract|pull out|list all the)\b", re.I)),
    (
        "code_review",
        re.compile(r"\b(review (this|my|the) (code|pr|diff|function)|code review|find (the )?bugs?)\b", re.I),
    ),
    (
        "code_explanation",
        re.compile(r"\b(explain|what does) (this|the following|my) (code|function|snippet|script)", re.I),
    ),
    (
        "code_generation",
        re.compile(
            r"\b(write|implement|create|generate) (a |an |the )?(python |js |typescript |"
            r"rust |go |sql |bash )?(function|script|class|program|code|query|test)",
            re.I,
        ),
    ),
    ("analysis", re.compile(r"\b(analy[sz]e|analysis|compare|evaluate|pros and cons)\b", re.I)),
)


def infer_task_type(prompt: str, has_tools: bool) -> tuple[str, str]:
    """(task type, why) from the prompt alone, in microseconds: tools, then keywords, then code."""
    if has_tools:
        return "agentic", "tools present"
    head = prompt[:4000]
    for name, pattern in _KEYWORDS:
        if pattern.search(head):
            return name, f"keyword for {name}"
    if _CODE.search(head):
        return "code_generation", "code in the prompt"
    return "chat", "no specific signal"
