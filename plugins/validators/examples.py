"""Checkable examples in a prompt: what the answer's code must do, in the prompt's own words.

Four shapes are recognised, all written in Python syntax (literal values are JSON-like, so another
language's strategy can reuse them):

* doctest: `>>> expr` (with `... ` continuation lines) followed by the expected output, up to a
  blank line; doctest's meaning: the repr of the value or what was printed, a traceback means the
  named exception. `>>>` statements without output are setup, run in order but not counted;
* assert: `assert f(x) == y` (the value of `f(x)` must equal `y`) or any other `assert` about the
  functions (must not raise), as MBPP-style prompts and test snippets write them;
* arrow: prose like `f(3) -> 9`, `f(3) == 9`, `f(3) => 9`, `f(3) ➞ 9`, `f(3) returns 9`,
  `f(3) should return 9` or `print(f(3))  # 9`, with literal arguments and a literal result;
* io: `Input: ... Output: ...` pairs (LeetCode, competitive programming). These are resolved
  against the answer later: a call with the input as literal arguments, or the answer run as a
  program with the input on stdin.

Anything ambiguous is left out rather than guessed: an example the answer cannot be checked
against costs a false failure, a missing one only costs evidence. Extraction is pure and memoised
on the prompt text.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from dataclasses import dataclass
from functools import lru_cache

MAX_EXAMPLES = 30
BUILTIN_NAMES = frozenset(dir(builtins))
KNOWN_MODULES = frozenset(
    {"math", "re", "collections", "itertools", "functools", "string", "heapq", "bisect", "statistics",
     "fractions", "decimal", "json", "operator", "random", "datetime", "cmath", "typing"}
)
_NOT_FUNCTIONS = frozenset({"if", "elif", "while", "for", "return", "print", "assert", "def", "class", "lambda",
                            "not", "and", "or", "in", "is", "yield", "await", "with", "except"})


@dataclass(frozen=True, slots=True)
class Example:
    """One check (or setup step) taken from the prompt.

    `kind`: "eval" (an expression), "exec" (a statement) or "io" (an input/output pair, resolved
    against the answer later). `compare`: "output" (`expected` is doctest output text), "value"
    (`expected` is an expression whose value must equal the source's), "true" (the statement must
    not raise), "io" (`source` is the input text, `expected` the output text). `names` are the
    non-builtin names the example needs the answer to define; `imports` modules it uses by name.
    """

    style: str
    kind: str
    source: str
    expected: str | None
    compare: str
    names: tuple[str, ...] = ()
    scored: bool = True
    imports: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return " ".join(self.source.split()), " ".join((self.expected or "").split())


# --------------------------------------------------------------------------- helpers


def json_literals(source: str) -> str:
    """`true`/`false`/`null` outside strings as Python's True/False/None (JSON-ish examples)."""
    if not re.search(r"\b(?:true|false|null)\b", source):
        return source
    mapping = {"true": "True", "false": "False", "null": "None"}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source
    out: list[str] = []
    last_end = (1, 0)
    lines = source.splitlines(keepends=True) or [""]
    for tok in tokens:
        if tok.start > last_end:
            out.append(_between(lines, last_end, tok.start))
        out.append(mapping.get(tok.string, tok.string) if tok.type == tokenize.NAME else tok.string)
        last_end = tok.end
    return "".join(out)


def _between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    if start[0] == end[0]:
        return lines[start[0] - 1][start[1]:end[1]] if start[0] - 1 < len(lines) else ""
    parts = [lines[start[0] - 1][start[1]:]]
    parts.extend(lines[row - 1] for row in range(start[0] + 1, end[0]))
    parts.append(lines[end[0] - 1][: end[1]] if end[0] - 1 < len(lines) else "")
    return "".join(parts)


def literal(source: str) -> tuple[bool, object]:
    """(True, value) if `source` is a Python (or JSON-ish) literal."""
    for candidate in (source, json_literals(source)):
        try:
            return True, ast.literal_eval(candidate.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return False, None


def _names(tree: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """(called function names, all loaded names, stored names) in `tree`."""
    called: set[str] = set()
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        elif isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else stored).add(node.id)
    return called, loaded, stored


def _parse(source: str, mode: str) -> ast.AST | None:
    try:
        return ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _segment(source: str, node: ast.AST) -> str:
    return ast.get_source_segment(source, node) or ast.unparse(node)


# --------------------------------------------------------------------------- doctest

_PS1 = re.compile(r"^(?P<indent>[ \t]*)>>>(?: (?P<src>.*)|$)")


def _doctest_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """(source, expected output) of every `>>>` prompt in `lines`."""
    blocks: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        match = _PS1.match(lines[i])
        if match is None:
            i += 1
            continue
        indent = match["indent"]
        source = [match["src"] or ""]
        i += 1
        while i < len(lines) and lines[i].startswith(indent + "...") and lines[i][len(indent) + 3: len(indent) + 4] in (
                "", " "):
            source.append(lines[i][len(indent) + 4:])
            i += 1
        want: list[str] = []
        while i < len(lines):
            line = lines[i]
            if not line.strip() or _PS1.match(line) or not line.startswith(indent):
                break
            body = line[len(indent):].rstrip()
            if body in ('"""', "'''", "```"):
                break
            if body.endswith(('"""', "'''")):
                want.append(body[:-3])
                i += 1
                break
            want.append("" if body == "<BLANKLINE>" else body)
            i += 1
        blocks.append(("\n".join(source), "\n".join(want).strip("\n")))
    return blocks


def _doctests(lines: list[str]) -> list[Example]:
    examples: list[Example] = []
    provides: dict[str, frozenset[str]] = {}  # a name set up by an earlier step -> answer names it needs

    def needs(loaded: set[str]) -> tuple[str, ...]:
        names: set[str] = set()
        for name in loaded - BUILTIN_NAMES - KNOWN_MODULES:
            names |= provides.get(name, {name})
        return tuple(sorted(names))

    for source, want in _doctest_blocks(lines):
        tree = _parse(source, "eval")
        if tree is not None:
            _, loaded, _ = _names(tree)
            needed = needs(loaded)
            imports = tuple(sorted(loaded & KNOWN_MODULES))
            if want and needed:
                examples.append(Example("doctest", "eval", source, want, "output", needed, True, imports))
            else:  # no output expected, or nothing of the answer's: a setup step
                examples.append(Example("doctest", "exec", source, None, "true", needed, False, imports))
            continue
        module = _parse(source, "exec")
        if not isinstance(module, ast.Module):
            continue
        _, loaded, stored = _names(module)
        needed = needs(loaded - stored)
        imports = tuple(sorted(loaded & KNOWN_MODULES))
        if len(module.body) == 1 and isinstance(module.body[0], ast.Assert):
            found = _assert_example(source, module.body[0], frozenset(), style="doctest")
            if found is not None:
                examples.append(found)
                continue
        for node in module.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    provides[(alias.asname or alias.name).split(".")[0]] = frozenset()
        for name in stored:
            provides[name] = frozenset(needed)
        if want and needed:
            examples.append(Example("doctest", "exec", source, want, "output", needed, True, imports))
        else:
            examples.append(Example("doctest", "exec", source, None, "true", needed, False, imports))
    return examples


# --------------------------------------------------------------------------- assert

_ASSERT = re.compile(r"^\s*assert\b")
_DEF_PARAMS = re.compile(r"\bdef\s+\w+\s*\(([^)]*)\)")


def _params(text: str) -> frozenset[str]:
    """Parameter names of every `def` in the prompt: an assert calling one is a test helper's
    (HumanEval's `check(candidate)`), not something the answer defines."""
    names: set[str] = set()
    for match in _DEF_PARAMS.finditer(text):
        for part in match[1].split(","):
            name = part.split(":")[0].split("=")[0].strip().lstrip("*")
            if name.isidentifier():
                names.add(name)
    return frozenset(names)


def _assert_example(source: str, node: ast.Assert, params: frozenset[str], style: str = "assert") -> Example | None:
    called, loaded, _ = _names(node.test)
    wanted = called - BUILTIN_NAMES
    if not wanted or wanted & params:
        return None
    extra = loaded - BUILTIN_NAMES - called
    if extra - KNOWN_MODULES:  # a local variable of some test function: not self-contained
        return None
    imports = tuple(sorted(extra & KNOWN_MODULES))
    names = tuple(sorted(wanted))
    test = node.test
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = test.left, test.comparators[0]
        if _names(right)[0] - BUILTIN_NAMES and not _names(left)[0] - BUILTIN_NAMES:
            left, right = right, left  # `assert 9 == f(3)`
        return Example(style, "eval", _segment(source, left), _segment(source, right), "value", names, True, imports)
    return Example(style, "exec", "assert " + _segment(source, test), None, "true", names, True, imports)


def _asserts(lines: list[str], params: frozenset[str]) -> list[Example]:
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        if not _ASSERT.match(lines[i]):
            i += 1
            continue
        for extra in range(8):  # an assert may continue over a few lines
            source = "\n".join(line.strip() if n == 0 else line for n, line in enumerate(lines[i: i + extra + 1]))
            module = _parse(source, "exec")
            if isinstance(module, ast.Module):
                break
        else:
            i += 1
            continue
        i += extra + 1
        if len(module.body) != 1 or not isinstance(module.body[0], ast.Assert):
            continue
        found = _assert_example(source, module.body[0], params)
        if found is not None:
            examples.append(found)
    return examples


# --------------------------------------------------------------------------- arrow examples in prose

_CALL_START = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_SEPARATOR = re.compile(
    r"\s*(?:==>|-->|->|=>|➞|→|==|=(?!=)|\bshould\s+(?:return|be|give|output)\b|\breturns?\b|\bgives\b"
    r"|\boutputs?\b|\bevaluates\s+to\b|\)?\s*#\s*(?:=>|->|→|==|output:?|returns?:?|prints?:?|result:?)?)\s*",
    re.IGNORECASE,
)
_SKIP_LINE = re.compile(r"^\s*(?:>>>|\.\.\.|assert\b|def\b|class\b|return\b|import\b|from\b)")


def _close_paren(text: str, open_at: int) -> int:
    """Index just after the parenthesis matching the one at `open_at`, or -1 (strings respected)."""
    depth = 0
    quote = ""
    i = open_at
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _expected_literal(text: str) -> str | None:
    """The literal at the start of `text` (an arrow example's right-hand side), or None."""
    text = text.strip()
    candidates = [text, text.rstrip(".,;:"), text.split(" #")[0], text.split("  ")[0], text.split(" (")[0],
                  text.split(", ")[0], text.split("; ")[0], text.split(". ")[0]]
    for candidate in candidates:
        candidate = candidate.strip().rstrip(".,;:").strip()
        if candidate and literal(candidate)[0]:
            return json_literals(candidate)
    return None


def _arrows(lines: list[str]) -> list[Example]:
    examples: list[Example] = []
    for raw in lines:
        if _SKIP_LINE.match(raw) or "(" not in raw:
            continue
        line = raw.replace("`", "").replace("**", "")
        for match in _CALL_START.finditer(line):
            name = match[1]
            if name in _NOT_FUNCTIONS or name in BUILTIN_NAMES:
                continue
            end = _close_paren(line, match.end() - 1)
            if end == -1:
                continue
            call = json_literals(line[match.start(): end])
            tree = _parse(call, "eval")
            if not isinstance(tree, ast.Expression) or not isinstance(tree.body, ast.Call):
                continue
            node = tree.body
            try:
                for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                    ast.literal_eval(arg)
            except (ValueError, TypeError, SyntaxError):
                continue
            separator = _SEPARATOR.match(line, end)
            if separator is None or separator.end() == end:
                continue
            if separator[0].lstrip().startswith(")") and not line[: match.start()].rstrip().endswith("print("):
                continue  # `g(f(3))  # 9` says nothing about f(3)
            expected = _expected_literal(line[separator.end():])
            if expected is None:
                continue
            examples.append(Example("arrow", "eval", call, expected, "value", (name,)))
    return examples


# --------------------------------------------------------------------------- input/output pairs

_LABEL_TAIL = r"(?:\s*#?\d+)?\s*(?:\*\*|__)?\s*(?P<colon>[:\uff1a])?\s*(?:\*\*|__)?\s*(?P<rest>.*?)\s*$"
_INPUT = re.compile(r"^\s*(?:[-*>#]+\s*)?(?:\*\*|__)?\s*(?:sample\s+|example\s+)?input" + _LABEL_TAIL, re.I)
_OUTPUT = re.compile(r"^\s*(?:[-*>#]+\s*)?(?:\*\*|__)?\s*(?:sample\s+|expected\s+)?output" + _LABEL_TAIL, re.I)
_OTHER_LABEL = re.compile(
    r"^\s*(?:[-*>#]+\s*)?(?:\*\*|__)?\s*(?:explanation|example|examples|constraints?|note|notes|follow[- ]up)\b", re.I
)
_FENCE = re.compile(r"^\s*(```|~~~)")


def _label(pattern: re.Pattern[str], line: str) -> str | None:
    """The text after the label if `line` is one (a colon, or nothing after the word)."""
    match = pattern.match(line)
    if match is None or (match["rest"] and not match["colon"]):
        return None
    return match["rest"]


def _block(lines: list[str], i: int, rest: str, stop: re.Pattern[str] | None) -> tuple[str, int]:
    """The content of a labelled block whose label is on line i; returns (text, next line)."""
    content = [rest] if rest else []
    j = i + 1
    if not rest:
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j < len(lines) and _FENCE.match(lines[j]):
            j += 1
            while j < len(lines) and not _FENCE.match(lines[j]):
                content.append(lines[j])
                j += 1
            return "\n".join(content), j + 1
    while j < len(lines):
        line = lines[j]
        if not line.strip() or _FENCE.match(line) or _label(_INPUT, line) is not None \
                or _label(_OUTPUT, line) is not None or _OTHER_LABEL.match(line) or (stop and stop.match(line)):
            break
        content.append(line)
        j += 1
    return "\n".join(content), j


_DESCRIPTION_WORDS = frozenset({
    "a", "an", "the", "of", "is", "are", "and", "or", "each", "line", "lines", "contains", "containing", "contain",
    "integer", "integers", "number", "numbers", "string", "strings", "list", "array", "print", "prints", "return",
    "returns", "output", "input", "given", "first", "second", "which", "where", "their", "its", "single",
    "separated", "space", "spaces", "consisting", "denoting", "should",
})


def _prose(text: str) -> bool:
    """Reads like a description of the format ("The first line contains an integer n"), not data."""
    words = re.findall(r"[a-z]+", text.lower())
    return sum(word in _DESCRIPTION_WORDS for word in words) >= 2


def _io_pairs(lines: list[str]) -> list[Example]:
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        rest = _label(_INPUT, lines[i])
        if rest is None:
            i += 1
            continue
        given, i = _block(lines, i, rest, _OUTPUT)
        while i < len(lines) and (not lines[i].strip() or _FENCE.match(lines[i])):
            i += 1
        if i >= len(lines):
            break
        rest = _label(_OUTPUT, lines[i])
        if rest is None:
            continue
        wanted, i = _block(lines, i, rest, None)
        if given.strip() and wanted.strip() and not _prose(given) and not _prose(wanted):
            examples.append(Example("io", "io", given.strip("\n"), wanted.strip("\n"), "io"))
    return examples


# --------------------------------------------------------------------------- entry point


@lru_cache(maxsize=128)
def extract_examples(text: str) -> tuple[Example, ...]:
    """Every checkable example in a prompt, in order of kind (doctest, assert, arrow, io), setup
    steps kept in place; duplicates dropped; at most MAX_EXAMPLES scored ones."""
    if not text:
        return ()
    lines = text.splitlines()
    found: list[Example] = []
    if ">>>" in text:
        found += _doctests(lines)
    if "assert" in text:
        found += _asserts(lines, _params(text))
    if "(" in text:
        found += _arrows(lines)
    if re.search(r"(?i)\binput\b", text) and re.search(r"(?i)\boutput\b", text):
        found += _io_pairs(lines)
    examples: list[Example] = []
    seen: set[tuple[str, str]] = set()
    scored = 0
    for example in found:
        if example.scored:
            if example.key in seen or scored >= MAX_EXAMPLES:
                continue
            seen.add(example.key)
            scored += 1
        examples.append(example)
    if not scored:
        return ()
    return tuple(examples)
