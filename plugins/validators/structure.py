"""Is the answer whole and well-formed? Truncation and code-block syntax."""

from __future__ import annotations

import ast
import json
import re
import textwrap

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.text import CodeBlock, analyze

_JSON_FORMATS = frozenset({"json_object", "json_schema"})


def json_requested(request: ChatRequest) -> bool:
    response_format = request.response_format
    return isinstance(response_format, dict) and response_format.get("type") in _JSON_FORMATS


def json_cut_off(text: str) -> str | None:
    """Why `text` reads as JSON cut off before its end, or None (parses, or broken mid-way)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()):
            return f"JSON ends before it closes ({exc.msg})"
    except RecursionError:
        return None
    return None


class TruncationValidator:
    """Fails answers that stopped before their end: `finish_reason` "length" (max_tokens hit), a
    code fence opened and never closed, or JSON (asked for, or the answer is a JSON document) that
    ends before it closes."""

    name = "truncation"
    default_weight = 2.5

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if response.finish_reason == "length":
            return ValidatorResult.of(self.name, 1.0, "stopped at the token limit (finish_reason=length)")
        text = response.text.strip()
        if not text:
            if response.tool_calls:
                return ValidatorResult.of(self.name, 10.0, "tool-call answer")
            return ValidatorResult.abstain(self.name, "no text")
        analysis = analyze(response.text)
        if analysis.unclosed_fence:
            return ValidatorResult.of(self.name, 2.0, "a code block is opened and never closed")
        if json_requested(request) or text[0] in "{[":
            reason = json_cut_off(text)
            if reason is not None:
                return ValidatorResult.of(self.name, 1.0, reason)
        return ValidatorResult.of(self.name, 10.0, "answer is complete")


_PYTHON = frozenset({"python", "py", "python3", "py3", "pycon", "ipython"})
_JSON = frozenset({"json"})
_C_LIKE = frozenset(
    {"c", "h", "cpp", "c++", "cc", "hpp", "cxx", "java", "cs", "csharp", "c#", "go", "golang",
     "rust", "rs", "kotlin", "kt", "swift", "scala", "dart", "groovy", "objc", "objective-c"}
)
_JS_LIKE = frozenset(
    {"js", "javascript", "ts", "typescript", "jsx", "tsx", "mjs", "cjs", "php", "node"}
)
_SQL = frozenset({"sql", "postgresql", "postgres", "mysql", "sqlite", "plsql", "tsql"})
_CSS = frozenset({"css", "scss", "less"})

# Comments and string literals, removed before counting brackets. Each alternative is linear, and
# the ones that may span lines also end at the end of the code (`\Z`), so an unclosed `/*` or
# backtick is consumed once instead of being rescanned from every later occurrence (quadratic).
# C-like languages: only one-character 'x' literals (Rust lifetimes and generics use a lone ').
_BLOCK_COMMENT = r"/\*.*?(?:\*/|\Z)"
_DOUBLE_QUOTED = r"\"(?:\\.|[^\"\\\n])*\""
_C_NOISE = re.compile(
    rf"//[^\n]*|{_BLOCK_COMMENT}|{_DOUBLE_QUOTED}|'(?:\\.|[^'\\\n])'|`[^`]*(?:`|\Z)", re.DOTALL
)
_JS_NOISE = re.compile(
    rf"//[^\n]*|{_BLOCK_COMMENT}|{_DOUBLE_QUOTED}|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*(?:`|\Z)",
    re.DOTALL,
)
_SQL_NOISE = re.compile(rf"--[^\n]*|{_BLOCK_COMMENT}|'(?:''|[^'])*(?:'|\Z)|\"[^\"\n]*\"", re.DOTALL)
_CSS_NOISE = re.compile(rf"{_BLOCK_COMMENT}|{_DOUBLE_QUOTED}|'(?:\\.|[^'\\\n])*'", re.DOTALL)
_BRACKETS = re.compile(r"[()\[\]{}]")
_CLOSER_OF = {")": "(", "]": "[", "}": "{"}
_REPL_PROMPT = re.compile(r"^>>>(?: |$)", re.MULTILINE)
_PY_FLAGS = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def _python_error(code: str) -> str | None:
    if _REPL_PROMPT.search(code):  # a console session: keep the input lines only
        lines = code.splitlines()
        code = "\n".join(line[4:] for line in lines if line.startswith((">>> ", "... ", ">>>", "...")))
    try:
        compile(textwrap.dedent(code), "<answer>", "exec", _PY_FLAGS, dont_inherit=True)
    except SyntaxError as exc:  # includes IndentationError and TabError
        return f"{exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:
        return type(exc).__name__
    return None


def _json_error(code: str) -> str | None:
    try:
        json.loads(code)
    except json.JSONDecodeError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    except RecursionError:
        return "nested too deeply"
    return None


def _bracket_error(code: str, noise: re.Pattern[str]) -> str | None:
    stack: list[str] = []
    for bracket in _BRACKETS.findall(noise.sub(" ", code)):
        opener = _CLOSER_OF.get(bracket)
        if opener is None:
            stack.append(bracket)
        elif not stack or stack.pop() != opener:
            return f"unbalanced {bracket!r}"
    return f"{len(stack)} unclosed bracket(s)" if stack else None


def _block_error(block: CodeBlock) -> tuple[bool, str | None]:
    """(checked, error) for one block; unknown languages are not checked."""
    lang = block.lang
    if lang in _PYTHON:
        return True, _python_error(block.code)
    if lang in _JSON:
        return True, _json_error(block.code)
    if lang in _C_LIKE:
        return True, _bracket_error(block.code, _C_NOISE)
    if lang in _JS_LIKE:
        return True, _bracket_error(block.code, _JS_NOISE)
    if lang in _SQL:
        return True, _bracket_error(block.code, _SQL_NOISE)
    if lang in _CSS:
        return True, _bracket_error(block.code, _CSS_NOISE)
    return False, None


def _illustrative_json(block: CodeBlock) -> bool:
    """JSON with comments or `...` placeholders: meant as an illustration, not a document."""
    return block.lang in _JSON and ("//" in block.code or "..." in block.code or "/*" in block.code)


class CodeSyntaxValidator:
    """Checks every closed fenced code block it knows the language of: Python compiles to an AST
    (console sessions reduced to their input lines), JSON parses, C-like, JS-like, SQL and CSS
    have balanced brackets outside strings and comments. Abstains when there is no such block.
    A block left open is the truncation validator's finding, not counted here."""

    name = "code_syntax"
    default_weight = 2.0

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if not response.text or ("```" not in response.text and "~~~" not in response.text):
            return ValidatorResult.abstain(self.name, "no code blocks")
        checked = 0
        errors: list[str] = []
        illustrative = 0
        for index, block in enumerate(analyze(response.text).blocks, start=1):
            if not block.closed or not block.code.strip():
                continue
            applies, error = _block_error(block)
            if not applies:
                continue
            checked += 1
            if error is not None:
                if _illustrative_json(block):
                    illustrative += 1
                else:
                    errors.append(f"{block.lang} block {index}: {error}")
        if not checked:
            return ValidatorResult.abstain(self.name, "no code blocks in a checked language")
        if errors:
            ok = checked - len(errors) - illustrative
            return ValidatorResult.of(self.name, 2.0 + 4.0 * ok / checked, "; ".join(errors)[:300])
        if illustrative:
            return ValidatorResult.of(self.name, 6.0, "JSON block with comments or '...' placeholders")
        return ValidatorResult.of(self.name, 10.0, f"{checked} code block(s) parse")
