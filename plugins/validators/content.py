"""Is there an answer at all? Empty answers, refusals, degenerate repetition loops."""

from __future__ import annotations

import re
from collections import Counter

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.structure import json_requested
from plugins.validators.text import analyze


class NonEmptyValidator:
    """Fails an answer with no text (or only whitespace, punctuation or empty code fences) and no
    tool calls. A tool-call answer with empty text is a complete answer."""

    name = "non_empty"
    default_weight = 3.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if response.tool_calls:
            return ValidatorResult.of(self.name, 10.0, "tool-call answer")
        text = response.text
        if not text or text.isspace():
            return ValidatorResult.of(self.name, 0.0, "empty answer")
        analysis = analyze(text)
        has_code = any(block.code.strip() for block in analysis.blocks)
        if not analysis.words and not has_code and text.lstrip()[:1] not in ("{", "["):
            return ValidatorResult.of(self.name, 0.0, "answer has no words, only punctuation or markup")
        return ValidatorResult.of(self.name, 10.0, "answer has content")


_CANT = r"(?:can(?:no|')?t|unable|not able|won'?t|will not|must decline|am not (?:allowed|permitted))"
# A refusal at the very start of the answer. Every repetition is bounded; no nested quantifiers.
_REFUSAL_START = re.compile(  # matched against the lower-cased start of the answer
    r"(?:i'?m|i am) (?:sorry|afraid)[^.!?\n]{0,60}?\b" + _CANT
    + r"|i (?:apologi[sz]e|regret)[^.!?\n]{0,60}?\b" + _CANT
    + r"|(?:unfortunately,? |sorry,? (?:but )?)?i (?:can(?:no|')?t|cannot|am unable to|am not able to"
    r"|won'?t|will not|must (?:respectfully )?decline to) (?:help|assist|provide|comply|do that"
    r"|fulfil|create|generate|write|answer|support|complete|share|engage|produce|give|access|browse"
    r"|view|see|open|run|execute|read)"
    r"|as an ai\b|i must (?:respectfully )?decline"
    # de, fr, es, it, pt, nl: an apology followed by a negation in the same sentence, or "I cannot help"
    r"|(?:es tut mir leid|je suis d[ée]sol[ée]e?|lo siento|mi dispiace|desculpe|het spijt me)"
    r"[^.!?\n]{0,80}?\b(?:nicht|kein|ne|no|non|n[ãa]o|niet|geen)\b"
    r"|ich kann (?:ihnen |dir )?(?:dabei |damit |hierbei )?nicht helfen|je ne peux pas vous aider"
    r"|no puedo ayudar|non posso aiutar|n[ãa]o posso ajudar|ik kan (?:je |u )?niet helpen"
)
_AS_AN_AI = re.compile(r"\bas an ai(?: language model| model| assistant)?\b")
_REFUSAL_WINDOW = 300
_SUBSTANTIAL_WORDS = 60


class RefusalValidator:
    """Fails refusals ("I'm sorry, but I can't help with that", "As an AI ...", and the same in
    de/fr/es/it/pt/nl) and answers stopped by the provider's content filter. A disclaimer followed
    by a substantial answer ("I can't run code, but here is how ...") is a partial failure; an
    "as an AI" aside inside a real answer costs a little."""

    name = "refusal"
    default_weight = 2.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if response.finish_reason == "content_filter":
            return ValidatorResult.of(self.name, 0.0, "stopped by the provider's content filter")
        text = response.text
        if not text or text.isspace():
            return ValidatorResult.abstain(self.name, "no text")
        head = text.lstrip()[:_REFUSAL_WINDOW].lower().replace("\u2019", "'")
        match = _REFUSAL_START.match(head)
        if match is not None:
            quoted = head[: head.find("\n") if "\n" in head else 80][:80]
            if analyze(text).word_count >= _SUBSTANTIAL_WORDS:
                return ValidatorResult.of(self.name, 4.0, f"answer opens with a refusal: {quoted!r}")
            return ValidatorResult.of(self.name, 0.0, f"refusal: {quoted!r}")
        if _AS_AN_AI.search(head):
            return ValidatorResult.of(self.name, 6.0, "'as an AI' disclaimer in the answer")
        return ValidatorResult.of(self.name, 10.0, "no refusal")


_WINDOW = 100
_MIN_TOKENS = 30
_MIN_SENTENCE_CHARS = 12


def _min_window_diversity(words: tuple[str, ...]) -> float:
    """The lowest share of distinct tokens over windows of 100 tokens (the last window aligned to
    the end, where loops usually are). Running prose in any language stays above ~0.5 (typically
    0.65-0.8), templated lists around 0.3-0.5; a phrase looping over and over drops to a few
    distinct words per hundred."""
    size = len(words)
    if size <= _WINDOW + _WINDOW // 2:
        return len(set(words)) / size
    starts = list(range(0, size - _WINDOW + 1, _WINDOW))
    if starts[-1] + _WINDOW < size:
        starts.append(size - _WINDOW)
    return min(len(set(words[s : s + _WINDOW])) for s in starts) / _WINDOW


def _repeated_sentences(prose: str) -> tuple[float, str, int]:
    """(share of sentences that repeat an earlier one, the most repeated sentence, its count).

    Sentences are cut with `str.split` on ". " and line breaks (a regex split costs 4x more; a
    loop of "!" or "?" sentences is one long sentence here, and the window measure's to catch)."""
    text = prose.lower().replace("\n", ". ")
    if not text.isascii():
        text = text.replace("\u3002", ". ").replace("\uff01", ". ").replace("\uff1f", ". ")
    sentences = [s for s in (part.strip() for part in text.split(". ")) if len(s) >= _MIN_SENTENCE_CHARS]
    if len(sentences) < 3:
        return 0.0, "", 0
    distinct = set(sentences)
    if len(distinct) == len(sentences):
        return 0.0, "", 1
    top, count = Counter(sentences).most_common(1)[0]
    return 1.0 - len(distinct) / len(sentences), top, count


class RepetitionValidator:
    """Fails degenerate loops: a phrase, sentence, line or paragraph repeated over and over.

    Two cheap measures on the prose (code blocks excluded; code is legitimately repetitive): the
    lowest share of distinct words in any window of 100 words (catches phrase loops, with or
    without punctuation, in any language) and the share of sentences that repeat an earlier one
    (catches whole sentences or paragraphs looping, whose windows can still look varied)."""

    name = "repetition"
    default_weight = 2.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if not response.text:
            return ValidatorResult.abstain(self.name, "no text")
        if json_requested(request) or response.text.lstrip()[:1] in ("{", "["):
            return ValidatorResult.abstain(self.name, "structured data, not prose")
        analysis = analyze(response.text)
        if len(analysis.words) < _MIN_TOKENS:
            return ValidatorResult.abstain(self.name, "too little prose to judge")
        diversity = _min_window_diversity(analysis.words)
        share, top, count = _repeated_sentences(analysis.prose)
        looped = f"{top[:60]!r} x{count}" if count > 1 else "a phrase repeated"
        if diversity < 0.15 or (count >= 4 and share >= 0.5):
            return ValidatorResult.of(self.name, 1.0, f"degenerate loop: {looped}")
        if diversity < 0.25 or (count >= 3 and share >= 0.25):
            return ValidatorResult.of(self.name, 3.0, f"heavy repetition: {looped}")
        if diversity < 0.35 or share >= 0.15:
            return ValidatorResult.of(self.name, 7.0, f"somewhat repetitive: {looped}")
        return ValidatorResult.of(self.name, 10.0, "no repetition")
