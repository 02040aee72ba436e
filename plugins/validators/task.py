"""Does the answer fit the task? Length sanity per task type, classification labels, summaries."""

from __future__ import annotations

import re
from collections import Counter

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.language import ALL_STOPWORDS
from plugins.validators.text import analyze, approx_words, memo, tokens

INPUT_SAMPLE_CHARS = 50_000
"""The task's input (the text to summarise or translate) is read up to this many characters."""

_MIN_DOCUMENT_WORDS = 60


@memo(maxsize=32)
def input_words(text: str) -> int:
    """`approx_words`, memoised: the length and summarization checks both measure the input."""
    return approx_words(text)


def task_input(request: ChatRequest) -> str:
    """The text the task works on: the last user message, or all user and system text when that
    message is only a short instruction (the document then sits in an earlier message)."""
    text = request.last_user_text()
    if len(text) < _MIN_DOCUMENT_WORDS * 4 or input_words(text[:INPUT_SAMPLE_CHARS]) < _MIN_DOCUMENT_WORDS:
        text = request.prompt_text()
    return text[:INPUT_SAMPLE_CHARS]


Bands = tuple[tuple[float, float, str], ...]


def _verdict(name: str, value: float, bands: Bands, detail: str) -> ValidatorResult:
    """The first band whose upper bound `value` does not exceed: (upper bound, score, message)."""
    for upper, score, message in bands:
        if value <= upper:
            return ValidatorResult.of(name, score, f"{message} ({detail})")
    raise AssertionError("bands must end with an unbounded band")


_INF = float("inf")
# Absolute bands, (max words, score, message); the last band of each is unbounded.
_ABSOLUTE: dict[str, Bands] = {
    "classification": ((30, 10.0, "short label answer"), (80, 6.0, "long for a classification"),
                       (200, 3.0, "far too long for a classification"), (_INF, 2.0, "an essay for a label")),
    "code_generation": ((3, 1.0, "almost nothing for a code task"), (10, 3.0, "very short for a code task"),
                        (_INF, 10.0, "plausible length")),
    "code_explanation": ((5, 2.0, "almost nothing for an explanation"), (20, 5.0, "very short explanation"),
                         (_INF, 10.0, "plausible length")),
    "code_review": ((5, 3.0, "almost nothing for a review"), (15, 6.0, "very short review"),
                    (_INF, 10.0, "plausible length")),
    "analysis": ((5, 2.0, "almost nothing for an analysis"), (25, 5.0, "very short analysis"),
                 (_INF, 10.0, "plausible length")),
}
# Bands on answer words / input words.
_RELATIVE: dict[str, Bands] = {
    "summarization": ((0.02, 4.0, "very short summary"), (0.7, 10.0, "shorter than the input"),
                      (1.0, 5.0, "barely shorter than the input"), (_INF, 2.0, "longer than the input")),
    "translation": ((0.25, 2.0, "much shorter than the source"), (0.4, 5.0, "shorter than the source"),
                    (2.5, 10.0, "plausible length"), (4.0, 5.0, "longer than the source"),
                    (_INF, 2.0, "much longer than the source")),
    "extraction": ((1.5, 10.0, "plausible length"), (3.0, 5.0, "longer than the input"),
                   (_INF, 2.0, "far longer than the input")),
}
_NO_EXPECTATION = frozenset({"chat", "agentic"})


class LengthValidator:
    """Length sanity for the task type: a classification answered with an essay, a code-generation
    answer of three words, a summary longer than its input, a translation a third of its source.
    Abstains for chat and agentic tasks (no length expectation), unknown task types, tool-call
    answers, and relative checks on inputs too short to compare against."""

    name = "length"
    default_weight = 1.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        task = request.task_type
        if task is None or task in _NO_EXPECTATION:
            return ValidatorResult.abstain(self.name, f"no length expectation for task {task!r}")
        if response.tool_calls and not response.text.strip():
            return ValidatorResult.abstain(self.name, "tool-call answer")
        words = analyze(response.text).word_count if response.text else 0
        if task in _ABSOLUTE:
            return _verdict(self.name, words, _ABSOLUTE[task], f"{words} words")
        if task in _RELATIVE:
            source_words = input_words(task_input(request))
            if source_words < _MIN_DOCUMENT_WORDS // 2:
                return ValidatorResult.abstain(self.name, f"input too short ({source_words} words)")
            ratio = words / source_words
            return _verdict(self.name, ratio, _RELATIVE[task], f"{words} words, {ratio:.2f}x the input")
        return ValidatorResult.abstain(self.name, f"unknown task type {task!r}")


_LABEL_PREFIX = re.compile(
    r"^(?:the )?(?:final )?(?:label|category|class|classification|answer|sentiment|intent|result|output)"
    r"(?: is)?\s*[:=\-]?\s*"
)
_STRIP = " \t\n\"'`*_.,;:!?()[]{}<>"


def _normalize(text: str) -> str:
    """Lower-case, markup and punctuation gone, separators (`_`, `-`) as spaces, single-spaced."""
    text = text.lower().strip().strip(_STRIP)
    text = _LABEL_PREFIX.sub("", text).strip(_STRIP)
    return " ".join(tokens(text))


class ClassificationValidator:
    """With `request.labels`, the answer (normalised: case, quotes, markdown, a "Label:" prefix,
    separators) must be exactly one allowed label. An answer that contains exactly one label plus
    other words gets partial credit; several labels or none fail. Abstains without labels."""

    name = "classification"
    default_weight = 2.5

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        labels = request.labels
        if not labels:
            return ValidatorResult.abstain(self.name, "no labels")
        answer = _normalize(response.text[:4000])
        normalized = {_normalize(label): label for label in labels if label and label.strip()}
        if answer in normalized:
            return ValidatorResult.of(self.name, 10.0, f"answer is the label {normalized[answer]!r}")
        padded = f" {answer} "
        found: list[str] = []
        for key in sorted(normalized, key=len, reverse=True):  # "very positive" before "positive"
            if key and f" {key} " in padded:
                found.append(normalized[key])
                padded = padded.replace(f" {key} ", " | ")
        if len(found) == 1:
            return ValidatorResult.of(self.name, 6.0, f"label {found[0]!r} plus other text")
        if found:
            return ValidatorResult.of(self.name, 2.0, f"several labels: {', '.join(map(repr, found[:5]))}")
        return ValidatorResult.of(self.name, 0.0, f"none of the {len(normalized)} allowed labels")


_KEY_TERMS = 12
_CANDIDATES = 40


# Frequent in any news or business text without saying what this one is about.
_FILLER = frozenset({
    "said", "says", "also", "would", "could", "should", "first", "second", "third", "last", "year",
    "years", "month", "months", "week", "weeks", "today", "time", "times", "many", "much", "more",
    "most", "some", "other", "such", "just", "like", "well", "made", "make", "makes", "told",
})


@memo(maxsize=32)
def key_terms(document: str) -> tuple[str, ...]:
    """The input's key terms, lower-cased: its most frequent content words (no stop words or
    filler, four letters or more) and numbers, numbers weighted double; at least two mentions.

    Counts all tokens with `Counter` (C-accelerated) and filters the distinct words afterwards."""
    counts = Counter(tokens(document))
    candidates = [
        (word, count) for word, count in counts.most_common(_CANDIDATES * 4)
        if (len(word) >= 4 and word not in ALL_STOPWORDS and word not in _FILLER) or word.isdigit()
    ][:_CANDIDATES]
    weighted = sorted(
        ((count * (2.0 if word.isdigit() else 1.0), word) for word, count in candidates), reverse=True
    )
    return tuple(word for weight, word in weighted[:_KEY_TERMS] if weight >= 2.0)


class SummarizationValidator:
    """For task_type summarization: the summary is shorter than the input and keeps its key terms
    (the input's most frequent content words and numbers; matched on a five-letter prefix so
    "revenue" finds "revenues"). Abstains for other tasks and short inputs."""

    name = "summarization"
    default_weight = 1.5

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if request.task_type != "summarization":
            return ValidatorResult.abstain(self.name, "not a summarization task")
        document = task_input(request)
        source_words = input_words(document)
        if source_words < _MIN_DOCUMENT_WORDS:
            return ValidatorResult.abstain(self.name, f"input too short ({source_words} words)")
        analysis = analyze(response.text)
        if analysis.word_count >= source_words:
            return ValidatorResult.of(self.name, 2.0, "the summary is not shorter than the input")
        terms = key_terms(document)
        if len(terms) < 3:
            return ValidatorResult.abstain(self.name, "no clear key terms in the input")
        words = set(analysis.words)
        prefixes = {word[:5] for word in words if len(word) >= 5}
        kept = [t for t in terms if t in words or (len(t) >= 5 and t[:5] in prefixes)]
        coverage = len(kept) / len(terms)
        summary = f"keeps {len(kept)}/{len(terms)} key terms"
        if coverage >= 0.4:
            return ValidatorResult.of(self.name, 10.0, summary)
        summary += "; missing " + ", ".join(t for t in terms if t not in kept)[:120]
        if coverage >= 0.25:
            return ValidatorResult.of(self.name, 7.0, summary)
        if coverage >= 0.1:
            return ValidatorResult.of(self.name, 4.0, summary)
        return ValidatorResult.of(self.name, 2.0, summary)
