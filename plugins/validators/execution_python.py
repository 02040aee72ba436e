"""The Python `Language` strategy: find the program an answer means and turn the prompt's examples
into sandbox cases (`PythonLanguage.plan`).

Code assembly: the answer's fenced Python blocks (last first), all of them together, or the whole
answer, each after the prompt's own definitions (imports, helpers, the stub); or the prompt's
signature continued by the answer (HumanEval). Cases: each doctest, assert or `f(x) -> y` example
as an eval or exec case; Input/Output pairs as calls of the entry point, or as stdin runs of the
whole program; then the edge inputs (see `execution.py`), unscored, with a short per-call timeout.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from typing import Any

from plugins.validators.examples import Example, json_literals, literal
from plugins.validators.execution_plan import Check, ExecutionConfig, Plan
from plugins.validators.text import analyze

EDGE_CALL_TIMEOUT_S = 0.2
MAX_CODE_CHARS = 100_000

_PY_TAGS = frozenset({"python", "py", "python3", "py3", "", "pycon"})
_READS_STDIN = re.compile(r"\binput\s*\(|sys\.stdin|open\(\s*0\b|\bfileinput\b")
_PROMPT_CODE_START = re.compile(r"^(?:from\s+\S+\s+import|import\s|def\s|class\s|@)", re.MULTILINE)


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code, "<answer>")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def _is_stub(node: ast.stmt) -> bool:
    """A function whose body is only a docstring, `pass` or `...`: a signature to complete."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in node.body)


def _named_in_prompt(name: str, prompt: str) -> bool:
    """Does the prompt require this name (a signature, `name`, "function name"), beyond using it
    in an example?"""
    escaped = re.escape(name)
    return re.search(
        rf"\bdef\s+{escaped}\s*\(|`{escaped}(?:\(|`)|\b(?:function|method|called|named)\s+[`'\"]?{escaped}\b",
        prompt,
    ) is not None


def _arity_fits(node: ast.FunctionDef | ast.AsyncFunctionDef, count: int, method: bool) -> bool:
    args = node.args
    positional = [*args.posonlyargs, *args.args][1 if method else 0:]
    required = len(positional) - len(args.defaults)
    return required <= count and (count <= len(positional) or args.vararg is not None)


class PythonLanguage:
    name = "python"

    # ---- where the code is
    def prompt_code(self, prompt: str) -> str | None:
        """The Python in the prompt: its last fenced Python block, the whole prompt, or the prompt
        from its first `def`/`import`/`class` line on, whichever parses first."""
        for block in reversed(analyze(prompt).blocks):
            if block.closed and block.lang in _PY_TAGS and _parses(block.code) is not None:
                return block.code
        if "```" not in prompt and _parses(prompt) is not None:
            return prompt
        start = _PROMPT_CODE_START.search(prompt)
        if start is not None and "```" not in prompt[start.start():]:
            code = prompt[start.start():]
            if _parses(code) is not None:
                return code
        return None

    def candidates(self, answer: str, prompt_code: str | None) -> list[tuple[str, ast.Module]]:
        """Programs the answer may mean, most likely first: each Python block (last first), all
        of them together, the whole answer, and the prompt's signature continued by the answer
        (HumanEval: the answer is the function's body). The prompt's definitions (imports,
        helpers, the stub) go first, so the answer's own definitions replace the stub's."""
        texts: list[str] = []
        blocks = [b.code for b in analyze(answer).blocks if b.closed and b.lang in _PY_TAGS and b.code.strip()]
        texts += reversed(blocks)
        if len(blocks) > 1:
            texts.append("\n\n".join(blocks))
        if not blocks and "```" not in answer:
            texts.append(answer)
        prelude = ""
        stub_tree = _parses(prompt_code) if prompt_code else None
        if stub_tree is not None:
            keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
                    ast.AnnAssign)
            prelude = "\n\n".join(ast.unparse(node) for node in stub_tree.body if isinstance(node, keep))
        found: list[tuple[str, ast.Module]] = []
        for text in texts:
            if len(text) > MAX_CODE_CHARS:
                continue
            tree = _parses(text)
            if tree is None:
                continue
            if prelude:
                combined = f"{prelude}\n\n\n{text}"
                combined_tree = _parses(combined)
                if combined_tree is not None:
                    found.append((combined, combined_tree))
                    continue
            found.append((text, tree))
        if prompt_code and stub_tree is not None and stub_tree.body and _is_stub(stub_tree.body[-1]):
            bodies = blocks[:1] if blocks else ([answer] if "```" not in answer else [])
            for body in bodies:
                body = body.strip("\n")
                indented = "\n".join(("    " + line) if line.strip() else line for line in body.splitlines())
                for variant in (body, indented):
                    combined = prompt_code.rstrip() + "\n" + variant + "\n"
                    tree = _parses(combined)
                    if tree is not None and len(combined) <= MAX_CODE_CHARS:
                        found.append((combined, tree))
                        break
        return found

    # ---- the plan
    def plan(self, prompt: str, answer: str, examples: Sequence[Example], config: ExecutionConfig) -> Plan | str:
        prompt_code = self.prompt_code(prompt)
        found = self.candidates(answer, prompt_code)
        if not found:
            return "no runnable Python in the answer"
        plain = [e for e in examples if e.kind != "io"]
        needed = {name for e in plain if e.scored for name in e.names}
        required = {name for e in plain if e.style in ("assert", "doctest") for name in e.names}
        chosen: tuple[str, ast.Module] | None = None
        if needed:
            chosen = next((c for c in found if needed <= _defined(c[1])), None) \
                or next((c for c in found if needed & _defined(c[1])), None)
            if chosen is None:
                missing = sorted(needed)
                if not all(name in required or _named_in_prompt(name, prompt) for name in missing):
                    plain = []  # examples about functions the answer may legitimately not have
                else:
                    chosen = found[0]
        code, tree = chosen or found[0]
        plan = Plan(self.name, code)
        for example in plain:
            self._add_example(plan, example)
        io_examples = [e for e in examples if e.kind == "io"]
        if io_examples:
            self._add_io(plan, io_examples, tree, code, prompt_code)
        if not plan.scored:
            return "no example applies to the answer's code"
        if config.edge_cases and config.max_edge_cases:
            self._add_edges(plan, config.max_edge_cases)
        return plan

    @staticmethod
    def _add(plan: Plan, case: dict[str, Any], check_fields: dict[str, Any]) -> None:
        case_id = len(plan.cases)
        plan.cases.append({"id": case_id, **case})
        plan.checks.append(Check(id=case_id, **check_fields))

    def _add_example(self, plan: Plan, example: Example) -> None:
        label = " ".join(example.source.split())[:80]
        case: dict[str, Any] = {"kind": example.kind, "source": example.source, "imports": list(example.imports)}
        if not example.scored:
            self._add(plan, case, {"label": label, "compare": "none", "scored": False})
        elif example.compare == "output":
            self._add(plan, case, {"label": label, "compare": "output", "expected_text": example.expected})
        elif example.compare == "value":
            known, value = literal(example.expected or "")
            if not known:
                case["expect_source"] = example.expected
            self._add(plan, case, {"label": label, "compare": "value", "expected_text": example.expected,
                                   "expected": (known, value)})
        else:
            self._add(plan, case, {"label": label, "compare": "true"})

    def _add_io(self, plan: Plan, examples: list[Example], tree: ast.Module, code: str,
                prompt_code: str | None) -> None:
        reads_stdin = _READS_STDIN.search(code) is not None
        calls = [(e, _call_args(e.source), literal(e.expected or "")) for e in examples]
        callable_pairs = [(e, args, out) for e, args, out in calls if args is not None and out[0]]
        entry = _entry_point(tree, prompt_code, len(callable_pairs[0][1]) if callable_pairs else 0) \
            if callable_pairs else None
        if entry is not None and len(callable_pairs) == len(calls):
            for example, args, (_, expected) in callable_pairs:
                assert args is not None
                source = f"{entry}({', '.join(map(repr, args))})"
                self._add(plan, {"kind": "eval", "source": source},
                          {"label": source[:80], "compare": "value", "expected_text": example.expected,
                           "expected": (True, expected), "lenient": True})
        elif reads_stdin:
            for example in examples:
                label = "input " + " ".join(example.source.split())[:60]
                self._add(plan, {"kind": "stdin", "input": example.source + "\n"},
                          {"label": label, "compare": "tokens", "expected_text": example.expected})

    def _add_edges(self, plan: Plan, limit: int) -> None:
        seen_sources = {case.get("source") for case in plan.cases}
        done_callees: set[str] = set()
        edges: list[str] = []
        for case, check in zip(list(plan.cases), list(plan.checks), strict=True):
            if not check.scored or case["kind"] != "eval":
                continue
            call = _literal_call(case["source"])
            if call is None or call[0] in done_callees:
                continue
            callee, args, kwargs = call
            done_callees.add(callee)
            for position, value in enumerate(args):
                for edge in _edge_values(value):
                    new_args = [*args[:position], edge, *args[position + 1:]]
                    parts = [repr(a) for a in new_args] + [f"{k}={v!r}" for k, v in kwargs]
                    source = f"{callee}({', '.join(parts)})"
                    if source not in seen_sources:
                        seen_sources.add(source)
                        edges.append(source)
        for source in edges[:limit]:
            self._add(plan, {"kind": "eval", "source": source, "edge": True, "call_timeout_s": EDGE_CALL_TIMEOUT_S},
                      {"label": source[:80], "compare": "none", "scored": False, "edge": True})


def _call_args(text: str) -> tuple[Any, ...] | None:
    """An Input text as literal positional arguments (`nums = [2,7], target = 9`, `[1, 2]`)."""
    source = "_f(" + json_literals(", ".join(line.strip().rstrip(",") for line in text.splitlines() if line.strip())) \
        + ")"
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call):
        return None
    try:
        return tuple(ast.literal_eval(a) for a in [*node.args, *(kw.value for kw in node.keywords)])
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _entry_point(tree: ast.Module, prompt_code: str | None, count: int) -> str | None:
    """The function Input/Output pairs are about: the prompt's one signature, else the answer's
    one public function (or the one whose arity fits), else a LeetCode `Solution` method."""
    stub = _parses(prompt_code) if prompt_code else None
    for source_tree in ([stub] if stub is not None else []) + [tree]:
        functions = [n for n in source_tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and not n.name.startswith("_") and n.name != "main"]
        fitting = [n for n in functions if _arity_fits(n, count, method=False)]
        if len(functions) == 1 and fitting:
            return functions[0].name
        if len(fitting) == 1:
            return fitting[0].name
        for node in source_tree.body:
            if isinstance(node, ast.ClassDef) and node.name == "Solution":
                methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                           and not m.name.startswith("_") and _arity_fits(m, count, method=True)]
                if len(methods) == 1:
                    return f"Solution().{methods[0].name}"
    return None


def _literal_call(source: str) -> tuple[str, list[Any], list[tuple[str, Any]]] | None:
    try:
        node = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not isinstance(node, ast.Call) or any(kw.arg is None for kw in node.keywords):
        return None
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = [(str(kw.arg), ast.literal_eval(kw.value)) for kw in node.keywords]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return ast.unparse(node.func), args, kwargs


def _edge_values(value: Any) -> list[Any]:
    kind = type(value)
    if kind is int:
        return [0, -abs(value) if value else -1]
    if kind is float:
        return [0.0, -abs(value) if value else -1.0]
    if kind in (str, list, tuple):
        return [value[:0], value[:1]] if len(value) > 1 else [value[:0]]
    if kind is dict:
        return [{}]
    if kind is set:
        return [set()]
    return []

