"""Is there an answer at all? Empty answers, refusals, degenerate repetition loops."""

from __future__ import annotations

import re
import zlib
from collections import Counter

from plugins.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
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
        if not analysis.words and not any(block.code.strip() for block in analysis.blocks):
            return ValidatorResult.of(self.name, 0.0, "answer has no words, only punctuation or markup")
        return ValidatorResult.of(self.name, 10.0, "answer has content")


_CANT = r"(?:can(?:no|')?t|unable|not able|won'?t|will not|must decline|am not (?:allowed|permitted))"
# A refusal at the very start of the answer. Every repetition is bounded; no nested quantifiers.
_REFUSAL_START = re.compile(
    r"(?:i'?m|i am) (?:sorry|afraid)[^.!?\n]{0,60}?\b" + _CANT
    + r"|i (?:apologi[sz]e|regret)[^.!?\n]{0,60}?\b" + _CANT
    + r"|(?:unfortunately,? |sorry,? (?:but )?)?i (?:can(?:no|')?t|cannot|am unable to|am not able to"
    r"|won'?t|will not|must (?:respectfully )?decline to) (?:help|assist|provide|comply|do that"
    r"|fulfil|create|generate|write|answer|support|complete|share|engage|produce|give)"
    r"|as an ai\b|i must (?:respectfully )?decline"
    r"|es tut mir leid|ich kann (?:ihnen |dir )?(?:dabei |damit )?nicht helfen"
    r"|je suis d[ée]sol[ée]e?|je ne peux pas|lo siento|no puedo|mi dispiace|non posso"
    r"|desculpe|n[ãa]o posso|het spijt me|ik kan (?:je |u )?niet"
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


_WINDOW_BYTES = 1024
_MIN_PROSE_BYTES = 160
_SENTENCE_SPLIT = re.compile(r"[.!?\n\u3002\uff01\uff1f]+")


def _min_window_ratio(data: bytes) -> float:
    """The lowest zlib compression ratio over 1 KiB windows: loops compress to almost nothing,
    natural prose in any language stays around 0.5, lists and tables above ~0.3."""
    size = len(data)
    if size <= _WINDOW_BYTES + _WINDOW_BYTES // 2:
        return len(zlib.compress(data, 1)) / size
    starts = list(range(0, size - _WINDOW_BYTES + 1, _WINDOW_BYTES))
    if starts[-1] + _WINDOW_BYTES < size:
        starts.append(size - _WINDOW_BYTES)  # the tail, where loops usually are
    return min(len(zlib.compress(data[s : s + _WINDOW_BYTES], 1)) / _WINDOW_BYTES for s in starts)


def _repeated_sentences(prose: str) -> tuple[float, str, int]:
    """(share of sentences that repeat an earlier one, the most repeated sentence, its count)."""
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(prose.lower())]
    sentences = [s for s in sentences if len(s) >= 12]
    if not sentences:
        return 0.0, "", 0
    counts = Counter(sentences)
    top, top_count = counts.most_common(1)[0]
    return 1.0 - len(counts) / len(sentences), top, top_count


class RepetitionValidator:
    """Fails degenerate loops: the same sentence, line or phrase repeated over and over.

    The cheap test runs on every answer: the zlib compression ratio of each 1 KiB window of the
    prose (code blocks excluded; code is legitimately repetitive). Only when a window compresses
    suspiciously well does it count repeated sentences, to confirm and to name the loop."""

    name = "repetition"
    default_weight = 2.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        prose = analyze(response.text).prose if response.text else ""
        data = prose.encode()
        if len(data) < _MIN_PROSE_BYTES:
            return ValidatorResult.abstain(self.name, "too little prose to judge")
        ratio = _min_window_ratio(data)
        if ratio >= 0.25:
            return ValidatorResult.of(self.name, 10.0, "no repetition")
        share, top, count = _repeated_sentences(prose)
        looped = f"{top[:60]!r} x{count}" if count > 1 else "a repeated phrase"
        if ratio < 0.12 or (count >= 5 and share >= 0.5):
            return ValidatorResult.of(self.name, 1.0, f"degenerate loop: {looped}")
        if ratio < 0.18 or share >= 0.3:
            return ValidatorResult.of(self.name, 3.0, f"heavy repetition: {looped}")
        return ValidatorResult.of(self.name, 8.0, "repetitive but varied (lists or tables)")
