"""JSON Schema checks for `response_format` and tool arguments, cheap on the hot path.

`jsonschema` (a litellm dependency) is the reference: it checks every schema once (an invalid
schema gets no verdict), explains every failure, and validates whatever schema it is given. But its
validation walks the instance through `evolve`d validator objects and costs ~7 us per value: a
1,000-token JSON answer (160 values) takes ~1.1 ms, more than the budget of the whole set.

So the common subset, the keywords that OpenAI structured outputs, tool parameter schemas and
pydantic's `model_json_schema()` use (`type`, `properties`, `required`, `additionalProperties`,
`items`, `enum`, `const`, numeric and length bounds, `anyOf`/`allOf`, local `$ref`s into `$defs`,
annotations), is compiled below into nested closures (every keyword looked up once per schema,
not once per value): ~0.8 us per value, 130 us for that answer. A schema that uses anything else
goes to `jsonschema`. The fast path only decides *whether* the instance conforms: when it
says no, `jsonschema` is asked for the explanation (and has the last word), so a failing answer
costs what it always did and a passing one a fraction.

Everything per schema (the schema check, the subset test, the `jsonschema` validator) is cached in
a bounded `SchemaCache` keyed by the schema's canonical JSON; `jsonschema` is imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_TYPE_NAMES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "format", "$comment", "deprecated", "readOnly",
     "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding"}
)
_SUBSET = _ANNOTATIONS | frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum",
     "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
     "anyOf", "allOf", "$ref"}
)
_MAX_DEPTH = 64


class SchemaUnusable(ValueError):
    """The schema itself is invalid or cannot be applied: no verdict on the instance."""


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """A local `#/$defs/Name` or `#/definitions/Name` reference, or None."""
    parts = ref.split("/")
    if len(parts) != 3 or parts[0] != "#" or parts[1] not in ("$defs", "definitions"):
        return None
    container = root.get(parts[1])
    return container.get(parts[2]) if isinstance(container, dict) else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int, float),
}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers (jsonschema's rule), 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


Check = Callable[[Any], bool]


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


class _Unsupported(Exception):
    """The schema uses something outside the fast subset."""


def _compile_ref(schema: dict[str, Any], root: dict[str, Any], refs: dict[str, Check], depth: int) -> Check:
    if not _ANNOTATIONS.issuperset(set(schema) - {"$ref"}):
        raise _Unsupported  # $ref beside assertions: leave the subtleties to jsonschema
    ref = str(schema["$ref"])
    if ref not in refs:  # compiled once; a recursive schema goes through the late-bound cell
        target = _resolve(ref, root)
        if target is None:
            raise _Unsupported
        cell: list[Check] = []
        refs[ref] = lambda value: cell[0](value)
        cell.append(_compile(target, root, refs, depth + 1))
    return refs[ref]


def _compile(schema: Any, root: dict[str, Any], refs: dict[str, Check], depth: int = 0) -> Check:
    """A predicate for one schema node; every keyword is looked up here, once, not per value."""
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict) or depth > _MAX_DEPTH or not _SUBSET.issuperset(schema):
        raise _Unsupported
    if "$ref" in schema:
        return _compile_ref(schema, root, refs, depth)

    def sub(subschema: Any) -> Check:
        return _compile(subschema, root, refs, depth + 1)

    kind = schema.get("type")
    kinds = None if kind is None else (kind,) if isinstance(kind, str) else kind
    if kinds is not None and not (isinstance(kinds, (tuple, list)) and all(k in _TYPE_NAMES for k in kinds)):
        raise _Unsupported
    enum = schema.get("enum")
    has_const, const = "const" in schema, schema.get("const")
    properties, required = schema.get("properties", {}), schema.get("required", [])
    if (
        (enum is not None and not (isinstance(enum, list) and all(map(_scalar, enum))))
        or not _scalar(const)
        or not isinstance(properties, dict)
        or not isinstance(required, list)
    ):
        raise _Unsupported
    props = {key: sub(value) for key, value in properties.items()}
    required_keys = tuple(required)
    additional = None if schema.get("additionalProperties", True) is True else sub(schema["additionalProperties"])
    items = None if schema.get("items", True) is True else sub(schema["items"])
    combos: list[tuple[bool, tuple[Check, ...]]] = []
    for key, need_all in (("anyOf", False), ("allOf", True)):
        if key in schema:
            if not isinstance(schema[key], list) or not schema[key]:
                raise _Unsupported
            combos.append((need_all, tuple(sub(option) for option in schema[key])))
    min_items, max_items = schema.get("minItems", 0), schema.get("maxItems")
    min_len, max_len = schema.get("minLength", 0), schema.get("maxLength")
    bounds = (schema.get("minimum"), schema.get("maximum"), schema.get("exclusiveMinimum"),
              schema.get("exclusiveMaximum"))
    minimum, maximum, exclusive_min, exclusive_max = bounds
    object_checks = bool(props or required_keys or additional is not None)
    array_checks = bool(items is not None or min_items or max_items is not None)
    string_checks = bool(min_len or max_len is not None)
    number_checks = any(bound is not None for bound in bounds)

    def out_of_bounds(value: float) -> bool:
        return not isinstance(value, bool) and (
            (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
            or (exclusive_min is not None and value <= exclusive_min)
            or (exclusive_max is not None and value >= exclusive_max)
        )

    # The type test as three C-level isinstance checks: Python's bool is an int, and jsonschema
    # counts 1.0 as an integer.
    classes = tuple({cls for k in kinds for cls in _PY_TYPES[k]}) if kinds is not None else ()
    bool_ok = kinds is None or "boolean" in kinds
    integer_only = kinds is not None and "integer" in kinds and "number" not in kinds

    def check(value: Any) -> bool:
        if kinds is not None:
            if not isinstance(value, classes) or (not bool_ok and isinstance(value, bool)):
                return False
            if integer_only and isinstance(value, float) and not value.is_integer():
                return False
        if enum is not None and not any(_equal(value, option) for option in enum):
            return False
        if has_const and not _equal(value, const):
            return False
        if isinstance(value, dict):
            if object_checks:
                for key in required_keys:
                    if key not in value:
                        return False
                for key, item in value.items():
                    prop = props.get(key)
                    if prop is not None:
                        if not prop(item):
                            return False
                    elif additional is not None and not additional(item):
                        return False
        elif isinstance(value, list):
            if array_checks:
                if len(value) < min_items or (max_items is not None and len(value) > max_items):
                    return False
                if items is not None:
                    for item in value:
                        if not items(item):
                            return False
        elif isinstance(value, str):
            if string_checks and (len(value) < min_len or (max_len is not None and len(value) > max_len)):
                return False
        elif number_checks and isinstance(value, (int, float)) and out_of_bounds(value):
            return False
        for need_all, options in combos:
            if need_all:
                if not all(option(value) for option in options):
                    return False
            elif not any(option(value) for option in options):
                return False
        return True

    return check


def compile_subset(schema: dict[str, Any]) -> Check | None:
    """A fast predicate for `schema`, or None if it uses anything outside the subset."""
    if "$schema" in schema:  # another draft may mean other semantics (draft 4's exclusiveMinimum)
        return None
    if "$id" in schema:  # a root $id does not change what local "#/..." refs point at
        schema = {key: value for key, value in schema.items() if key != "$id"}
    try:
        return _compile(schema, schema, {})
    except (_Unsupported, RecursionError, TypeError):
        return None


class _Compiled:
    """One schema, checked: the fast path if the schema is in the subset, and jsonschema."""

    __slots__ = ("fast", "schema", "unusable", "validator")

    def __init__(self, schema: dict[str, Any]) -> None:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import Draft202012Validator, validator_for

        self.schema = schema
        self.unusable: SchemaUnusable | None = None
        cls = validator_for(schema, default=Draft202012Validator)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            self.unusable = SchemaUnusable(f"invalid schema: {exc.message}")
        self.validator: Any = cls(schema)
        self.fast = compile_subset(schema) if self.unusable is None else None


class SchemaCache:
    """Checked schemas keyed by their canonical JSON (FIFO-bounded); one per validator object."""

    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        self._compiled: dict[str, _Compiled] = {}

    def _get(self, schema: dict[str, Any]) -> _Compiled:
        key = json.dumps(schema, sort_keys=True, default=str)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = _Compiled(schema)
            if len(self._compiled) >= self._maxsize:
                del self._compiled[next(iter(self._compiled))]
            self._compiled[key] = compiled
        if compiled.unusable is not None:
            raise compiled.unusable
        return compiled

    def error(self, schema: dict[str, Any], instance: Any) -> str | None:
        """Why `instance` does not conform to `schema`, or None if it does.

        Raises SchemaUnusable when the schema is invalid or cannot be applied (an unresolvable
        `$ref`, say): that is the caller's schema at fault, not the answer."""
        compiled = self._get(schema)
        if compiled.fast is not None and compiled.fast(instance):
            return None
        try:
            from jsonschema.exceptions import best_match

            error = best_match(compiled.validator.iter_errors(instance))
        except Exception as exc:
            raise SchemaUnusable(f"schema cannot be applied: {type(exc).__name__}") from exc
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path)
        return str(error.message)[:160] + (f" at /{where}" if where else "")
