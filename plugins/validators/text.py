"""Shared, memoised text analysis: fenced code blocks, prose, word tokens.

Several validators need the same view of an answer (where the code blocks are, what the prose
words are). `analyze(text)` computes it once; it is memoised on the text itself, so the second
validator that asks for the same answer gets the cached object (a `str` caches its own hash, so a
hit costs a dict lookup). The caches are bounded `functools.lru_cache`s: pure functions of their
argument, thread-safe, holding at most a few dozen answers. `clear_caches()` exists for the
benchmark, which must not measure cache hits.

Tokenising is deliberately crude and fast: lower-case, ASCII and common Unicode punctuation mapped
to spaces by one `str.translate`, then `str.split()` (both in C). A regex `findall` over the same
text costs three to six times as much.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_CACHES: list[Any] = []


def memo(maxsize: int) -> Callable[[F], F]:
    """`functools.lru_cache(maxsize)` that `clear_caches()` can reset."""

    def wrap(func: F) -> F:
        cached = lru_cache(maxsize=maxsize)(func)
        _CACHES.append(cached)
        return cached  # type: ignore[return-value]

    return wrap


def clear_caches() -> None:
    """Forget every memoised analysis (for benchmarks and tests)."""
    for cached in _CACHES:
        cached.cache_clear()


_PUNCTUATION = (
    "".join(chr(c) for c in range(128) if not chr(c).isalnum() and chr(c) != " ")
    + "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u00bf\u00a1\u2013\u2014"
    + "\u2026\u00b7\u2022\u3001\u3002\uff0c\uff1a\uff1b\uff01\uff1f\uff08\uff09\u3010\u3011\u300c\u300d"
    + "\u00a0"
)
_TO_SPACES = str.maketrans(_PUNCTUATION, " " * len(_PUNCTUATION))

# UTF-8 lead bytes of U+3000..U+DFFF: CJK punctuation, kana, ideographs, Hangul.
_CJK_LEAD_BYTES = tuple(bytes([lead]) for lead in range(0xE3, 0xEE))

_MAX_FENCE_INDENT = 40  # fences in nested list items are indented; deeper than this is not a fence
WORD_SAMPLE_CHARS = 20_000
"""Only the first this-many characters of prose are tokenised into `Analysis.words`."""


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens of `text`, punctuation and apostrophes dropped."""
    return text.lower().translate(_TO_SPACES).split()


def cjk_chars(text: str) -> int:
    """How many characters of `text` are CJK (U+3000..U+DFFF), counted on the UTF-8 bytes: eleven
    `bytes.count` calls run at memory speed, a regex character class costs ~8 ns a character."""
    if text.isascii():
        return 0
    data = text.encode("utf-8", "surrogatepass")
    return sum(data.count(lead) for lead in _CJK_LEAD_BYTES)


def approx_words(text: str) -> int:
    """Roughly how many words `text` has; CJK text (no spaces) counts two characters a word."""
    return len(text.split()) + cjk_chars(text) // 2


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """A fenced code block. `lang` is the first word of the info string, lower-cased ('' if none)."""

    lang: str
    code: str
    closed: bool


@dataclass(frozen=True, slots=True)
class Analysis:
    """One text, taken apart. `words` are `tokens()` of the first `WORD_SAMPLE_CHARS` of `prose`;
    `word_count` is `approx_words` of the whole text (prose counted as tokens)."""

    text: str
    blocks: tuple[CodeBlock, ...]
    prose: str
    words: tuple[str, ...]
    word_count: int

    @property
    def unclosed_fence(self) -> bool:
        return bool(self.blocks) and not self.blocks[-1].closed

    @property
    def code_chars(self) -> int:
        return sum(len(block.code) for block in self.blocks)


def _fence_lines(text: str, marker: str) -> list[tuple[int, int, str, str]]:
    """(line start, line end, fence, info string) of every line that starts, after optional
    indentation (fences inside list items are indented), with `marker` ("```" or "~~~").

    `str.find` instead of a MULTILINE regex: a regex anchored at line starts still tries every
    position and costs ~8 ns a character; `find` jumps from marker to marker. Every search starts
    where the last one ended, so a long line full of markers stays linear."""
    lines: list[tuple[int, int, str, str]] = []
    line_start = scanned = 0
    pos = text.find(marker)
    while pos != -1:
        newline = text.rfind("\n", scanned, pos)
        if newline != -1:
            line_start = newline + 1
        scanned = pos
        if pos - line_start <= _MAX_FENCE_INDENT and not text[line_start:pos].strip(" \t"):
            line_end = text.find("\n", pos)
            if line_end == -1:
                line_end = len(text)
            line = text[pos:line_end]
            info = line.lstrip(marker[0])
            lines.append((line_start, line_end, line[: len(line) - len(info)], info.strip()))
            pos = text.find(marker, line_end)
            scanned = line_end
        else:
            pos = text.find(marker, pos + len(marker))
    return lines


def _lang(info: str) -> str:
    words = info.split()
    return words[0].lower().lstrip("{.").rstrip("}") if words else ""


def split_fences(text: str) -> tuple[tuple[CodeBlock, ...], str]:
    """The fenced code blocks of a Markdown text and the prose between them.

    A block closes at the next fence line of the same character, at least as long, with no info
    string (CommonMark's rule, which also lets a four-backtick block contain three-backtick ones).
    A block still open at the end of the text is returned with `closed=False`.
    """
    lines = _fence_lines(text, "```") if "```" in text else []
    if "~~~" in text:
        lines = sorted(lines + _fence_lines(text, "~~~"))
    if not lines:
        return (), text
    blocks: list[CodeBlock] = []
    prose: list[str] = []
    last = 0
    opener: tuple[int, int, str, str] | None = None
    for line in lines:
        start, end, fence, info = line
        if opener is None:
            opener = line
            prose.append(text[last:start])
        elif fence[0] == opener[2][0] and len(fence) >= len(opener[2]) and not info:
            blocks.append(CodeBlock(_lang(opener[3]), text[opener[1] + 1 : start], True))
            last = end
            opener = None
    if opener is not None:
        blocks.append(CodeBlock(_lang(opener[3]), text[opener[1] + 1 :], False))
    else:
        prose.append(text[last:])
    return tuple(blocks), "\n".join(prose)


@memo(maxsize=64)
def analyze(text: str) -> Analysis:
    """The shared view of `text` (memoised on the text)."""
    blocks, prose = split_fences(text)
    words = tokens(prose[:WORD_SAMPLE_CHARS])
    # Counting the prose tokens we already have is cheaper than splitting the whole text again.
    word_count = len(words) + sum(approx_words(block.code) for block in blocks)
    if len(prose) > WORD_SAMPLE_CHARS:
        word_count += len(prose[WORD_SAMPLE_CHARS:].split())
    word_count += cjk_chars(prose) // 2
    return Analysis(text=text, blocks=blocks, prose=prose, words=tuple(words), word_count=word_count)
