"""Each validator on real good and bad answers: what a caller would notice in the answer."""

# The CJK sample answers use real full-width punctuation.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from typing import Any

import pytest

from core.types import ChatRequest, ChatResponse
from plugins.validators import VALIDATORS, ValidatorResult, build_validators, default_validators
from plugins.validators.content import NonEmptyValidator, RefusalValidator, RepetitionValidator
from plugins.validators.language import LanguageValidator, detect_text, normalize_language
from plugins.validators.schemas import SchemaCache, compile_subset
from plugins.validators.structure import CodeSyntaxValidator, TruncationValidator
from plugins.validators.structured import JsonModeValidator, ToolCallValidator
from plugins.validators.task import ClassificationValidator, LengthValidator, SummarizationValidator

# --------------------------------------------------------------------------------------------
# Real prompts and answers
# --------------------------------------------------------------------------------------------

EN_PROMPT = (
    "I have a list of dictionaries with user records and I need to group them by their country "
    "field. What is the cleanest way to do this in Python, and how does it compare to using pandas?"
)

GOOD_PY_ANSWER = '''The cleanest way in plain Python is `collections.defaultdict`: you walk the list once and \
append each record to the bucket of its country. It is a single pass, it keeps the original order of the \
records inside each group, and it needs no third-party dependency.

```python
from collections import defaultdict


def group_by_country(users: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for user in users:
        groups[user.get("country", "unknown")].append(user)
    return dict(groups)


users = [
    {"name": "Ada", "country": "UK"},
    {"name": "Grace", "country": "US"},
    {"name": "Linus", "country": "FI"},
]
print(group_by_country(users))
```

If you already use pandas, `df.groupby("country")` does the same and gives you aggregation for free, \
but converting a small list of dictionaries into a DataFrame costs more than the grouping itself. For \
a few thousand records the plain Python version is faster and easier to read; for large tables where \
you also need sums, means or joins, pandas is the better tool.
'''

BAD_PY_ANSWER = '''You can group the records with a dictionary of lists. Walk the list once and append every \
record to the list that belongs to its country, creating the list the first time you see a country.

```python
def group_by_country(users)
    groups = {}
    for user in users:
        groups.setdefault(user["country"], []).append(user)
    return groups
```

This runs in linear time and keeps the records of each country in their original order, which is \
usually what you want when you print or export the groups afterwards.
'''

REFUSAL = (
    "I'm sorry, but I can't help with writing a keylogger that hides itself from the user. Capturing "
    "someone's keystrokes without their knowledge is illegal in most countries and can cause real harm."
)

PARTIAL_REFUSAL = (
    "I can't access your private GitHub repository, so I cannot look at the failing workflow directly. "
    "However, the error message you pasted points to a common cause. The runner uses Python 3.8 by "
    "default, while your pyproject.toml requires 3.11, so pip refuses to install the package. Add an "
    "actions/setup-python step before the install step and set python-version to 3.11. If you use a "
    "matrix, make sure every entry is at least 3.11 as well, otherwise some jobs will keep failing with "
    "the same message even after the fix."
)

APOLOGY_NOT_REFUSAL = (
    "I'm sorry for the confusion in my previous answer. The flag you need is --no-cache-dir, not "
    "--no-cache, and it has to come after the install subcommand. Run pip install --no-cache-dir -r "
    "requirements.txt and the image will be smaller because pip no longer keeps the downloaded wheels."
)

GERMAN_ANSWER = (
    "Am einfachsten gruppieren Sie die Datensätze mit einem defaultdict aus dem Modul collections. Sie "
    "gehen die Liste einmal durch und hängen jeden Datensatz an die Liste seines Landes an. Das ist ein "
    "einziger Durchlauf, die Reihenfolge der Datensätze bleibt innerhalb jeder Gruppe erhalten, und Sie "
    "brauchen keine zusätzliche Bibliothek. Mit pandas geht es auch, aber für eine kleine Liste ist die "
    "Umwandlung in einen DataFrame teurer als die Gruppierung selbst."
)

FRENCH_ANSWER = (
    "La façon la plus simple est d'utiliser un defaultdict du module collections. Vous parcourez la "
    "liste une seule fois et vous ajoutez chaque enregistrement à la liste de son pays. Cela ne demande "
    "qu'un seul passage, l'ordre des enregistrements est conservé dans chaque groupe, et vous n'avez pas "
    "besoin d'une bibliothèque externe. Avec pandas, c'est aussi possible, mais pour une petite liste la "
    "conversion en DataFrame coûte plus cher que le regroupement lui-même."
)

CHINESE_ANSWER = (
    "最简单的方法是使用 collections 模块中的 defaultdict。你只需要遍历列表一次，把每条记录追加到它所属国家的列表中。"
    "这样只需要一次遍历，每个分组内记录的顺序保持不变，而且不需要任何第三方库。如果你已经在使用 pandas，"
    "也可以用 groupby，但对于很小的列表来说，转换成 DataFrame 的开销比分组本身还要大。"
)

JAPANESE_PROMPT = "Pythonで辞書のリストを国ごとにグループ化する一番きれいな方法は何ですか？pandasと比べてどうですか？"
JAPANESE_ANSWER = (
    "一番簡単な方法は、collections モジュールの defaultdict を使うことです。リストを一度だけ走査して、"
    "各レコードをその国のリストに追加します。一回の走査で済み、各グループ内のレコードの順序も保たれ、"
    "外部ライブラリも必要ありません。pandas でも groupby を使えますが、小さなリストでは DataFrame への変換の方が"
    "グループ化そのものより高くつきます。"
)

LOOPING_ANSWER = (
    "To fix the timeout you should increase the read timeout of the HTTP client and make sure the "
    "upstream server actually sends a response within that time. "
    + "The timeout is caused by the server not responding in time. " * 25
)

PHRASE_LOOP = (
    "Sure, here is the summary of the meeting. The team discussed the release plan and then "
    + "the deployment and the deployment and the deployment and the deployment " * 20
)

TRUNCATED_ANSWER = '''Here is a retry helper with exponential backoff that you can drop into the client module:

```python
import random
import time


def retry(call, attempts=5, base=0.5):
    for attempt in range(attempts):
        try:
            return call()
        except TimeoutError:
            delay = base * 2 ** attempt
            time.sleep(delay + random.uniform(0, delay'''

INVOICE_JSON = {
    "invoice_number": "INV-2024-0193",
    "customer": "Northwind Traders",
    "total": 1843.5,
    "currency": "EUR",
    "line_items": [
        {"description": "Consulting, March", "amount": 1500.0},
        {"description": "Travel expenses", "amount": 343.5},
    ],
}

INVOICE_SCHEMA = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "customer": {"type": "string"},
        "total": {"type": "number"},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"description": {"type": "string"}, "amount": {"type": "number"}},
                "required": ["description", "amount"],
            },
        },
    },
    "required": ["invoice_number", "customer", "total", "currency"],
    "additionalProperties": False,
}

WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_forecast",
            "description": "Forecast for the next days.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
                "required": ["city", "days"],
            },
        },
    },
]

ARTICLE = """Acme Robotics reported revenue of 412 million dollars for the third quarter, up 18 percent \
from a year earlier, driven by strong demand for its warehouse robots in Europe. The company said orders \
from logistics customers in Germany and the Netherlands doubled, and that its new Picker X2 robot now \
accounts for a third of all warehouse robot sales. Operating margin improved to 14 percent as the cost \
of batteries fell and the factory in Lyon reached full capacity.

Chief executive Maria Lindqvist said the company would hire 600 engineers next year and open a second \
factory in Poland to keep up with warehouse robot orders. She warned, however, that supply of \
semiconductors remains tight and that delivery times for the Picker X2 could stretch to nine months in \
the first half of next year. Acme Robotics raised its full-year revenue forecast to 1.6 billion dollars.

Analysts welcomed the results but noted that competition in warehouse robots is increasing, with two \
Chinese manufacturers cutting prices by up to 20 percent. Shares of Acme Robotics rose 7 percent in \
early trading after the announcement."""

GOOD_SUMMARY = (
    "Acme Robotics grew third-quarter revenue 18 percent to 412 million dollars on strong European "
    "demand for warehouse robots, led by the Picker X2, and raised its full-year forecast to 1.6 billion. "
    "It plans to hire 600 engineers and build a factory in Poland, but warns that semiconductor shortages "
    "may delay deliveries."
)

OFF_TOPIC_SUMMARY = (
    "The text describes general trends in the economy and how businesses adapt to changing conditions. "
    "It mentions that planning ahead matters and that leaders should communicate clearly with staff."
)


def chat(prompt: str = EN_PROMPT, **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": prompt}], **kwargs)


def answer(text: str, **kwargs: Any) -> ChatResponse:
    kwargs.setdefault("finish_reason", "stop")
    return ChatResponse(text=text, **kwargs)


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def assert_fails(result: ValidatorResult, below: float = 5.0) -> None:
    assert not result.abstained, result
    assert result.score < below, result
    assert not result.passed, result


def assert_passes(result: ValidatorResult, at_least: float = 10.0) -> None:
    assert not result.abstained, result
    assert result.score >= at_least, result
    assert result.passed, result


# --------------------------------------------------------------------------------------------
# Contract and registry
# --------------------------------------------------------------------------------------------


def test_result_rejects_scores_outside_the_scale() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.10"):
        ValidatorResult("broken", 11.0, True, "too good to be true")
    with pytest.raises(ValueError):
        ValidatorResult("broken", float("nan"), True, "not a number")


def test_default_validators_cover_every_known_validator_once() -> None:
    validators = default_validators()
    names = [v.name for v in validators]
    assert names == list(VALIDATORS)
    assert len(set(names)) == len(names) >= 10
    assert all(v.default_weight >= 1.0 for v in validators)


def test_build_validators_selects_by_name_in_order() -> None:
    assert [v.name for v in build_validators(["language", "non_empty"])] == ["language", "non_empty"]
    assert [v.name for v in build_validators(None)] == list(VALIDATORS)
    assert build_validators([]) == []


def test_build_validators_rejects_unknown_and_repeated_names() -> None:
    with pytest.raises(ValueError, match=r"unknown validator\(s\) 'spellcheck'.*known: non_empty"):
        build_validators(["non_empty", "spellcheck"])
    with pytest.raises(ValueError, match="more than once: 'refusal'"):
        build_validators(["refusal", "language", "refusal"])
    with pytest.raises(ValueError, match="list of names"):
        build_validators("refusal")  # type: ignore[arg-type]


def test_every_validator_abstains_or_passes_a_good_answer() -> None:
    request, response = chat(task_type="code_generation"), answer(GOOD_PY_ANSWER)
    for validator in default_validators():
        result = validator.score(request, response)
        assert result.name == validator.name
        assert result.abstained or result.score >= 7.0, result


# --------------------------------------------------------------------------------------------
# 1. Empty answers and refusals
# --------------------------------------------------------------------------------------------


def test_non_empty_fails_empty_and_whitespace_answers() -> None:
    validator = NonEmptyValidator()
    assert_fails(validator.score(chat(), answer("")), below=1.0)
    assert_fails(validator.score(chat(), answer("  \n\n\t ")), below=1.0)
    assert_fails(validator.score(chat(), answer("```\n```\n...")), below=1.0)


def test_non_empty_accepts_tool_calls_with_empty_text_and_real_answers() -> None:
    validator = NonEmptyValidator()
    call = tool_call("get_weather", '{"city": "Oslo"}')
    assert_passes(validator.score(chat(), answer("", tool_calls=[call], finish_reason="tool_calls")))
    assert_passes(validator.score(chat(), answer(GOOD_PY_ANSWER)))


def test_refusal_fails_a_real_refusal() -> None:
    result = RefusalValidator().score(chat("Write a keylogger that hides from the task manager."), answer(REFUSAL))
    assert_fails(result, below=1.0)
    assert "refusal" in result.reason


def test_refusal_catches_as_an_ai_and_other_languages() -> None:
    validator = RefusalValidator()
    as_an_ai = "As an AI language model, I do not have access to real-time stock prices or your portfolio."
    assert_fails(validator.score(chat(), answer(as_an_ai)), below=1.0)
    german = "Es tut mir leid, aber dabei kann ich Ihnen nicht helfen. Das Umgehen eines Kopierschutzes ist verboten."
    assert_fails(validator.score(chat(), answer(german)), below=1.0)
    spanish = "Lo siento, pero no puedo ayudarte a acceder a la cuenta de otra persona sin su permiso."
    assert_fails(validator.score(chat(), answer(spanish)), below=1.0)
    german_apology = "Es tut mir leid für die Verwirrung. Der richtige Befehl lautet pip install --no-cache-dir."
    assert_passes(validator.score(chat(), answer(german_apology)))


def test_refusal_gives_partial_credit_when_a_real_answer_follows() -> None:
    result = RefusalValidator().score(chat(), answer(PARTIAL_REFUSAL))
    assert_fails(result)
    assert result.score > 2.0


def test_refusal_passes_an_apology_that_is_not_a_refusal_and_normal_answers() -> None:
    validator = RefusalValidator()
    assert_passes(validator.score(chat(), answer(APOLOGY_NOT_REFUSAL)))
    assert_passes(validator.score(chat(), answer(GOOD_PY_ANSWER)))


def test_refusal_fails_content_filter_stops() -> None:
    response = answer("The requested content", finish_reason="content_filter")
    assert_fails(RefusalValidator().score(chat(), response), below=1.0)


# --------------------------------------------------------------------------------------------
# 2. Truncation
# --------------------------------------------------------------------------------------------


def test_truncation_fails_finish_reason_length() -> None:
    text = GOOD_PY_ANSWER[: GOOD_PY_ANSWER.index("If you already")] + "If you already use pandas, `df.group"
    result = TruncationValidator().score(chat(), answer(text, finish_reason="length"))
    assert_fails(result, below=2.0)
    assert "length" in result.reason


def test_truncation_fails_an_unclosed_code_block() -> None:
    result = TruncationValidator().score(chat(), answer(TRUNCATED_ANSWER, finish_reason=None))
    assert_fails(result, below=3.0)
    assert "never closed" in result.reason


def test_truncation_fails_json_cut_off_when_json_was_asked_for() -> None:
    cut = json.dumps(INVOICE_JSON, indent=2)[:170]
    request = chat("Extract the invoice as JSON.", params={"response_format": {"type": "json_object"}})
    assert_fails(TruncationValidator().score(request, answer(cut)), below=2.0)
    # ... and when the answer is a JSON document even though nobody asked
    assert_fails(TruncationValidator().score(chat(), answer('{"status": "ok", "items": [1, 2, 3')), below=2.0)


def test_truncation_passes_complete_answers_and_broken_but_complete_json() -> None:
    validator = TruncationValidator()
    assert_passes(validator.score(chat(), answer(GOOD_PY_ANSWER)))
    assert_passes(validator.score(chat(), answer(json.dumps(INVOICE_JSON))))
    # invalid JSON that is not cut off is the json_mode validator's business, not truncation
    assert_passes(validator.score(chat(), answer('{"status": "ok", "count": 3,}')))
    call = tool_call("get_weather", '{"city": "Oslo"}')
    assert_passes(validator.score(chat(), answer("", tool_calls=[call], finish_reason="tool_calls")))


# --------------------------------------------------------------------------------------------
# 3. Language
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (EN_PROMPT, "en"),
        ("Explain the difference between a process and a thread in operating systems, briefly.", "en"),
        ("Wie konfiguriere ich den Proxy für pip hinter einer Firewall?", "de"),
        (GERMAN_ANSWER, "de"),
        (FRENCH_ANSWER, "fr"),
        ("La forma más sencilla es usar un defaultdict del módulo collections. Recorres la lista una sola "
         "vez y añades cada registro a la lista de su país, y no necesitas ninguna biblioteca externa.", "es"),
        ("Il modo più semplice è usare un defaultdict del modulo collections. Si scorre la lista una sola "
         "volta e si aggiunge ogni record alla lista del suo paese, senza bisogno di librerie esterne.", "it"),
        ("A forma mais simples é usar um defaultdict do módulo collections. Você percorre a lista uma só "
         "vez e adiciona cada registro à lista do seu país, e não precisa de nenhuma biblioteca externa.", "pt"),
        ("De eenvoudigste manier is een defaultdict uit de module collections. Je loopt de lijst één keer "
         "door en voegt elk record toe aan de lijst van zijn land, en je hebt geen externe bibliotheek nodig.",
         "nl"),
        ("Проще всего использовать defaultdict из модуля collections. Вы проходите список один раз и "
         "добавляете каждую запись в список её страны.", "ru"),
        (CHINESE_ANSWER, "zh"),
        (JAPANESE_ANSWER, "ja"),
        ("가장 간단한 방법은 collections 모듈의 defaultdict를 사용하는 것입니다. 목록을 한 번만 순회하면서 각 레코드를 "
         "해당 국가의 목록에 추가하면 됩니다.", "ko"),
        ("أسهل طريقة هي استخدام defaultdict من وحدة collections. تمر على القائمة مرة واحدة وتضيف كل سجل إلى "
         "قائمة بلده.", "ar"),
    ],
)
def test_detector_recognises_supported_languages(text: str, language: str) -> None:
    assert detect_text(text).language == language


def test_language_fails_german_and_french_answers_to_an_english_prompt() -> None:
    validator = LanguageValidator()
    for text in (GERMAN_ANSWER, FRENCH_ANSWER, CHINESE_ANSWER):
        result = validator.score(chat(), answer(text))
        assert_fails(result, below=2.0)
        assert "expected en" in result.reason


def test_language_fails_an_english_answer_to_a_short_german_prompt() -> None:
    prompt = "Warum schlägt mein Test fehl, wenn ich die Datenbank im Container starte?"
    english = (
        "The test fails because the container is not ready when the test starts. Add a health check to "
        "the compose file and wait for it before you run the tests."
    )
    result = LanguageValidator().score(chat(prompt), answer(english))
    assert_fails(result, below=2.0)
    assert "expected de" in result.reason


def test_language_passes_matching_answers() -> None:
    validator = LanguageValidator()
    assert_passes(validator.score(chat(), answer(GOOD_PY_ANSWER)))
    assert_passes(validator.score(chat(JAPANESE_PROMPT), answer(JAPANESE_ANSWER)))


def test_language_uses_the_request_hint_over_the_prompt() -> None:
    validator = LanguageValidator()
    assert_passes(validator.score(chat(language="de-DE"), answer(GERMAN_ANSWER)))
    assert_passes(validator.score(chat(language="German"), answer(GERMAN_ANSWER)))
    assert_fails(validator.score(chat(language="fr"), answer(GERMAN_ANSWER)), below=2.0)


def test_language_abstains_when_the_prompt_asks_for_another_language() -> None:
    prompt = (
        "Please translate the following release note into French for our customers in Quebec: the new "
        "version of the gateway is faster and it now supports streaming for all of the providers."
    )
    assert LanguageValidator().score(chat(prompt), answer(FRENCH_ANSWER)).abstained
    assert LanguageValidator().score(chat(EN_PROMPT, task_type="translation"), answer(FRENCH_ANSWER)).abstained


def test_language_abstains_on_code_only_and_short_answers() -> None:
    code_only = "```python\nfrom collections import defaultdict\ngroups = defaultdict(list)\n```"
    assert LanguageValidator().score(chat(), answer(code_only)).abstained
    assert LanguageValidator().score(chat(), answer("Use defaultdict(list).")).abstained
    assert LanguageValidator().score(chat(language="sv"), answer(GERMAN_ANSWER)).abstained


def test_normalize_language_accepts_codes_regions_and_names() -> None:
    assert normalize_language("pt_BR") == "pt"
    assert normalize_language("zh-Hans") == "zh"
    assert normalize_language("Deutsch") == "de"
    assert normalize_language("") is None


# --------------------------------------------------------------------------------------------
# 4. Code syntax
# --------------------------------------------------------------------------------------------


def test_code_syntax_passes_valid_python_and_json_blocks() -> None:
    text = GOOD_PY_ANSWER + "\nThe result looks like this:\n\n```json\n" + json.dumps(INVOICE_JSON) + "\n```\n"
    result = CodeSyntaxValidator().score(chat(), answer(text))
    assert_passes(result)
    assert "2 code block" in result.reason


def test_code_syntax_fails_python_with_a_syntax_error() -> None:
    result = CodeSyntaxValidator().score(chat(), answer(BAD_PY_ANSWER))
    assert_fails(result, below=3.0)
    assert "python block 1" in result.reason and "line 1" in result.reason


def test_code_syntax_fails_invalid_json_and_unbalanced_javascript() -> None:
    broken_json = (
        "Send this body to the endpoint:\n\n```json\n"
        '{\n  "model": "gpt-4o-mini",\n  "messages": [{"role": "user", "content": "hi"}],\n}\n```\n'
    )
    assert_fails(CodeSyntaxValidator().score(chat(), answer(broken_json)), below=3.0)
    broken_js = (
        "Wrap the call in a try block:\n\n```javascript\nasync function load(url) {\n  try {\n"
        "    const res = await fetch(url);\n    return await res.json();\n  } catch (err) {\n"
        '    console.error("failed", err);\n}\n```\n'
    )
    result = CodeSyntaxValidator().score(chat(), answer(broken_js))
    assert_fails(result, below=3.0)
    assert "unclosed" in result.reason


def test_code_syntax_handles_rust_lifetimes_strings_and_console_sessions() -> None:
    rust = (
        "A function that returns the longer of two string slices needs a lifetime:\n\n```rust\n"
        "fn longest<'a>(x: &'a str, y: &'a str) -> &'a str {\n"
        '    let brace = \'{\';\n    println!("comparing {} and {}", x, y); // ) unbalanced in a comment\n'
        "    if x.len() > y.len() { x } else { y }\n}\n```\n"
    )
    assert_passes(CodeSyntaxValidator().score(chat(), answer(rust)))
    console = (
        "In the interpreter:\n\n```pycon\n>>> from collections import Counter\n"
        ">>> Counter('mississippi').most_common(2)\n[('i', 4), ('s', 4)]\n>>> for k in range(2):\n"
        "...     print(k)\n...\n0\n1\n```\n"
    )
    assert_passes(CodeSyntaxValidator().score(chat(), answer(console)))


def test_code_syntax_gives_partial_credit_to_illustrative_json() -> None:
    text = (
        "The config file looks roughly like this:\n\n```json\n{\n  // one entry per provider\n"
        '  "providers": {"groq": {"rpm": 30}, ...}\n}\n```\n'
    )
    result = CodeSyntaxValidator().score(chat(), answer(text))
    assert 5.0 <= result.score < 10.0 and not result.abstained


def test_code_syntax_abstains_without_checkable_code() -> None:
    assert CodeSyntaxValidator().score(chat(), answer(FRENCH_ANSWER)).abstained
    shell = "Install it with:\n\n```bash\npip install 'httpx[http2]' && case $x in a) echo a;; esac\n```\n"
    assert CodeSyntaxValidator().score(chat(), answer(shell)).abstained
    # an unclosed block is the truncation validator's finding
    assert CodeSyntaxValidator().score(chat(), answer(TRUNCATED_ANSWER)).abstained


# --------------------------------------------------------------------------------------------
# 5. JSON mode
# --------------------------------------------------------------------------------------------


def json_request(schema: dict[str, Any] | None = None) -> ChatRequest:
    if schema is None:
        response_format: dict[str, Any] = {"type": "json_object"}
    else:
        response_format = {"type": "json_schema", "json_schema": {"name": "invoice", "schema": schema}}
    return chat(
        "Extract the invoice fields from this email as JSON: Invoice INV-2024-0193 for Northwind Traders, "
        "total 1,843.50 EUR (consulting 1,500.00, travel 343.50).",
        params={"response_format": response_format},
    )


def test_json_mode_passes_a_json_object_and_a_conforming_schema_answer() -> None:
    text = json.dumps(INVOICE_JSON, indent=2)
    assert_passes(JsonModeValidator().score(json_request(), answer(text)))
    result = JsonModeValidator().score(json_request(INVOICE_SCHEMA), answer(text))
    assert_passes(result)
    assert "schema" in result.reason


def test_json_mode_fails_prose_arrays_and_invalid_json() -> None:
    validator = JsonModeValidator()
    prose = "The invoice INV-2024-0193 is for Northwind Traders and totals 1,843.50 EUR."
    assert_fails(validator.score(json_request(), answer(prose)), below=1.0)
    assert_fails(validator.score(json_request(), answer('[{"invoice_number": "INV-2024-0193"}]')))
    trailing_comma = '{"invoice_number": "INV-2024-0193", "total": 1843.5,}'
    assert_fails(validator.score(json_request(), answer(trailing_comma)), below=1.0)


def test_json_mode_fails_answers_that_break_the_schema() -> None:
    validator = JsonModeValidator()
    wrong_type = dict(INVOICE_JSON, total="1,843.50")
    result = validator.score(json_request(INVOICE_SCHEMA), answer(json.dumps(wrong_type)))
    assert_fails(result, below=3.0)
    assert "total" in result.reason
    missing = {k: v for k, v in INVOICE_JSON.items() if k != "customer"}
    assert "customer" in validator.score(json_request(INVOICE_SCHEMA), answer(json.dumps(missing))).reason
    extra = dict(INVOICE_JSON, notes="paid")
    assert_fails(validator.score(json_request(INVOICE_SCHEMA), answer(json.dumps(extra))), below=3.0)


def test_json_mode_fails_softly_on_json_in_a_code_fence() -> None:
    fenced = "```json\n" + json.dumps(INVOICE_JSON, indent=2) + "\n```"
    result = JsonModeValidator().score(json_request(), answer(fenced))
    assert_fails(result)
    assert result.score >= 3.0 and "fence" in result.reason


def test_json_mode_abstains_without_json_format_or_with_an_invalid_schema() -> None:
    assert JsonModeValidator().score(chat(), answer(GOOD_PY_ANSWER)).abstained
    text_format = chat(params={"response_format": {"type": "text"}})
    assert JsonModeValidator().score(text_format, answer(GOOD_PY_ANSWER)).abstained
    bad_schema = {"type": "object", "properties": {"total": {"type": "money"}}}
    assert JsonModeValidator().score(json_request(bad_schema), answer(json.dumps(INVOICE_JSON))).abstained


def test_json_mode_reuses_compiled_schemas() -> None:
    validator = JsonModeValidator()
    for _ in range(3):
        validator.score(json_request(INVOICE_SCHEMA), answer(json.dumps(INVOICE_JSON)))
    assert len(validator._schemas._compiled) == 1


PYDANTIC_STYLE_SCHEMA = {
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "size": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "maxItems": 3},
            },
            "required": ["name"],
            "additionalProperties": False,
        }
    },
    "$ref": "#/$defs/Node",
}


@pytest.mark.parametrize(
    "schema",
    [INVOICE_SCHEMA, PYDANTIC_STYLE_SCHEMA, WEATHER_TOOLS[1]["function"]["parameters"],
     {"type": "object", "additionalProperties": {"type": "number", "exclusiveMaximum": 10}},
     {"type": ["string", "null"], "enum": ["a", "b", None]},
     {"allOf": [{"type": "object", "required": ["a"]}, {"properties": {"a": {"const": 1}}}]}],
)
def test_fast_schema_check_agrees_with_jsonschema(schema: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    instances: list[Any] = [
        None, True, 1, 1.0, 2.5, 12, "a", "", [], [1, "a"], {}, {"a": 1}, {"a": True}, {"city": "Oslo"},
        {"city": "Oslo", "days": 0}, {"city": "Oslo", "days": 3}, {"x": 9.5, "y": 10},
        {"name": "root", "children": [{"name": "leaf", "size": 3}]}, {"name": "root", "size": -1},
        {"name": "root", "children": [{"size": 3}]}, {"name": "", "extra": 1},
        INVOICE_JSON, dict(INVOICE_JSON, total="1843.50"), dict(INVOICE_JSON, currency="CHF"),
    ]
    fast = compile_subset(schema)
    assert fast is not None
    reference = Draft202012Validator(schema)
    for instance in instances:
        assert fast(instance) == reference.is_valid(instance), instance


def test_schemas_outside_the_fast_subset_still_validate() -> None:
    schema = {"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "oneOf": [
        {"required": ["id"]}, {"required": ["name"]}]}
    assert compile_subset(schema) is None
    cache = SchemaCache()
    assert cache.error(schema, {"id": 1, "x-trace": "abc"}) is None
    assert cache.error(schema, {"id": 1, "x-trace": 5}) is not None
    assert cache.error(schema, {"id": 1, "name": "both"}) is not None


# --------------------------------------------------------------------------------------------
# 6. Tool calls
# --------------------------------------------------------------------------------------------


def tools_request(tool_choice: Any = "auto") -> ChatRequest:
    return chat(
        "What's the weather in Oslo right now, and will it rain there this weekend?",
        params={"tools": WEATHER_TOOLS, "tool_choice": tool_choice},
        task_type="agentic",
    )


def tools_answer(*calls: dict[str, Any]) -> ChatResponse:
    return answer("", tool_calls=list(calls), finish_reason="tool_calls")


def test_tool_calls_pass_valid_calls() -> None:
    response = tools_answer(
        tool_call("get_weather", '{"city": "Oslo", "unit": "celsius"}'),
        tool_call("get_forecast", '{"city": "Oslo", "days": 3}', "call_2"),
    )
    result = ToolCallValidator().score(tools_request(), response)
    assert_passes(result)
    assert "2 valid" in result.reason


def test_tool_calls_fail_an_unknown_tool() -> None:
    result = ToolCallValidator().score(tools_request(), tools_answer(tool_call("get_rain", '{"city": "Oslo"}')))
    assert_fails(result, below=1.0)
    assert "get_rain" in result.reason and "get_weather" in result.reason


def test_tool_calls_fail_arguments_that_are_not_json() -> None:
    response = tools_answer(tool_call("get_weather", "{'city': 'Oslo'}"))
    assert_fails(ToolCallValidator().score(tools_request(), response), below=2.0)


def test_tool_calls_fail_arguments_that_break_the_parameter_schema() -> None:
    validator = ToolCallValidator()
    missing_days = tools_answer(tool_call("get_forecast", '{"city": "Oslo"}'))
    result = validator.score(tools_request(), missing_days)
    assert_fails(result)
    assert "days" in result.reason
    bad_enum = tools_answer(tool_call("get_weather", '{"city": "Oslo", "unit": "kelvin"}'))
    assert_fails(validator.score(tools_request(), bad_enum))


def test_tool_calls_enforce_tool_choice() -> None:
    validator = ToolCallValidator()
    text_only = answer("It is 4 degrees and cloudy in Oslo, and rain is likely on Saturday.")
    assert_fails(validator.score(tools_request("required"), text_only), below=2.0)
    named = {"type": "function", "function": {"name": "get_forecast"}}
    assert_fails(validator.score(tools_request(named), text_only), below=2.0)
    wrong = tools_answer(tool_call("get_weather", '{"city": "Oslo"}'))
    assert_fails(validator.score(tools_request(named), wrong), below=3.0)
    assert_fails(validator.score(tools_request("none"), wrong), below=3.0)


def test_tool_calls_fail_calls_when_no_tools_were_offered() -> None:
    response = tools_answer(tool_call("get_weather", '{"city": "Oslo"}'))
    assert_fails(ToolCallValidator().score(chat(), response), below=1.0)


def test_tool_calls_abstain_when_tools_are_optional_and_unused() -> None:
    text = answer("I can look that up for you: which city do you mean, Oslo in Norway or Oslo in Minnesota?")
    assert ToolCallValidator().score(tools_request(), text).abstained
    assert ToolCallValidator().score(chat(), answer(GOOD_PY_ANSWER)).abstained


# --------------------------------------------------------------------------------------------
# 7. Repetition
# --------------------------------------------------------------------------------------------


def test_repetition_fails_a_looping_sentence() -> None:
    result = RepetitionValidator().score(chat(), answer(LOOPING_ANSWER))
    assert_fails(result, below=2.0)
    assert "the timeout is caused by the server" in result.reason


def test_repetition_fails_a_phrase_loop_without_punctuation() -> None:
    assert_fails(RepetitionValidator().score(chat(), answer(PHRASE_LOOP)), below=2.0)


def test_repetition_fails_a_repeated_paragraph() -> None:
    paragraph = (
        "The gateway keeps a token bucket per provider and waits for a token before each request, so "
        "bursts are smoothed out before they reach the upstream and the rate limit is respected.\n\n"
    )
    assert_fails(RepetitionValidator().score(chat(), answer(GOOD_PY_ANSWER + paragraph * 8)))


def test_repetition_passes_varied_answers_and_structured_lists() -> None:
    validator = RepetitionValidator()
    assert_passes(validator.score(chat(), answer(GOOD_PY_ANSWER)))
    assert_passes(validator.score(chat(), answer(GERMAN_ANSWER)))
    checklist = """Before the release, check each service:

- **gateway**: run the smoke tests against staging and check that p99 latency stays under 50 ms.
- **learning worker**: confirm that the last weight update finished and the new config was picked up.
- **review UI**: open the queue and make sure the low-confidence answers of the last hour appear.
- **audit sink**: check that the spool directory is empty and the batch writer reports no errors.
- **client SDK**: run the offline fallback test against a local Ollama and check the error rate.
"""
    assert validator.score(chat(), answer(checklist)).passed
    table = """The providers compare like this for our workload:

| Provider | Model | Input price (1M tokens) | Output price (1M tokens) | Rate limit |
|---|---|---|---|---|
| Groq | llama-3.1-8b-instant | $0.05 | $0.08 | 30 requests/min |
| Groq | llama-3.3-70b-versatile | $0.59 | $0.79 | 30 requests/min |
| Cerebras | llama3.1-8b | $0.10 | $0.10 | 30 requests/min |
| Mistral | mistral-small-latest | $0.20 | $0.60 | 1 request/s |
| Mistral | mistral-large-latest | $2.00 | $6.00 | 1 request/s |

Groq and Cerebras are the cheapest for the fast tier; Mistral costs more but translates better.
"""
    assert_passes(validator.score(chat(), answer(table)))


def test_repetition_abstains_on_json_data() -> None:
    rows = {"providers": {f"provider-{i}": {"rate_per_second": i + 1, "burst": 10} for i in range(30)}}
    assert RepetitionValidator().score(chat(), answer(json.dumps(rows, indent=2))).abstained


# --------------------------------------------------------------------------------------------
# 8. Length sanity
# --------------------------------------------------------------------------------------------


def test_length_fails_an_essay_for_a_classification() -> None:
    request = chat("Classify the sentiment of this review: 'Arrived late and the box was crushed.'",
                   task_type="classification")
    essay = " ".join([GERMAN_ANSWER.replace("ä", "a")] * 8)  # ~500 words
    result = LengthValidator().score(request, answer(essay))
    assert_fails(result, below=3.0)
    assert_passes(LengthValidator().score(request, answer("negative")))


def test_length_fails_a_three_word_code_generation_answer() -> None:
    request = chat("Write a Python function that retries an HTTP call with exponential backoff.",
                   task_type="code_generation")
    assert_fails(LengthValidator().score(request, answer("Use the tenacity.")), below=2.0)
    assert_passes(LengthValidator().score(request, answer(GOOD_PY_ANSWER)))


def test_length_fails_a_summary_longer_than_its_input() -> None:
    request = chat("Summarize this article:\n\n" + ARTICLE, task_type="summarization")
    assert_fails(LengthValidator().score(request, answer(ARTICLE + "\n\n" + GOOD_SUMMARY)), below=3.0)
    assert_passes(LengthValidator().score(request, answer(GOOD_SUMMARY)))


def test_length_checks_translations_against_their_source() -> None:
    request = chat("Translate into German:\n\n" + FRENCH_ANSWER, task_type="translation")
    assert_passes(LengthValidator().score(request, answer(GERMAN_ANSWER)))
    assert_fails(LengthValidator().score(request, answer("Benutzen Sie defaultdict.")), below=3.0)


def test_length_abstains_for_chat_agentic_and_unknown_tasks() -> None:
    for task in (None, "chat", "agentic", "poetry"):
        assert LengthValidator().score(chat(task_type=task), answer(GOOD_PY_ANSWER)).abstained


# --------------------------------------------------------------------------------------------
# 9. Classification
# --------------------------------------------------------------------------------------------

TICKET_LABELS = ["billing", "technical_support", "account_access", "feature_request"]


def ticket(labels: list[str] | None = TICKET_LABELS) -> ChatRequest:
    return chat(
        "Classify this support ticket: 'I was charged twice for my March subscription and need a refund "
        "for the duplicate payment.'",
        task_type="classification",
        labels=labels,
    )


@pytest.mark.parametrize("text", ["billing", "Billing.", "**billing**", "Label: billing", '"billing"\n'])
def test_classification_passes_exactly_one_label(text: str) -> None:
    assert_passes(ClassificationValidator().score(ticket(), answer(text)))


def test_classification_normalises_separators() -> None:
    assert_passes(ClassificationValidator().score(ticket(), answer("Technical support")))


def test_classification_gives_partial_credit_for_a_label_in_a_sentence() -> None:
    text = "This ticket is about billing, because the customer was charged twice and wants a refund."
    result = ClassificationValidator().score(ticket(), answer(text))
    assert 5.0 <= result.score < 10.0 and result.passed
    assert "'billing'" in result.reason


def test_classification_fails_several_labels_or_none() -> None:
    validator = ClassificationValidator()
    assert_fails(validator.score(ticket(), answer("It is either billing or account access.")), below=3.0)
    assert_fails(validator.score(ticket(), answer("This is a refund request for a duplicate charge.")),
                 below=1.0)


def test_classification_prefers_the_longer_overlapping_label() -> None:
    request = chat("Rate the sentiment: 'Absolutely love it!'", labels=["positive", "very positive", "negative"])
    assert_passes(ClassificationValidator().score(request, answer("Very positive")))
    result = ClassificationValidator().score(request, answer("The sentiment is very positive overall."))
    assert result.score == 6.0 and "'very positive'" in result.reason


def test_classification_abstains_without_labels() -> None:
    assert ClassificationValidator().score(ticket(None), answer("billing")).abstained


# --------------------------------------------------------------------------------------------
# 10. Summarization
# --------------------------------------------------------------------------------------------


def summary_request() -> ChatRequest:
    return chat("Summarize the following article in two sentences.\n\n" + ARTICLE, task_type="summarization")


def test_summarization_passes_a_summary_that_keeps_the_key_terms() -> None:
    assert_passes(SummarizationValidator().score(summary_request(), answer(GOOD_SUMMARY)))


def test_summarization_fails_an_off_topic_summary() -> None:
    result = SummarizationValidator().score(summary_request(), answer(OFF_TOPIC_SUMMARY))
    assert_fails(result, below=3.0)
    assert "acme" in result.reason and "warehouse" in result.reason


def test_summarization_fails_a_summary_that_is_not_shorter() -> None:
    padded = ARTICLE + " In short, " + GOOD_SUMMARY
    assert_fails(SummarizationValidator().score(summary_request(), answer(padded)), below=3.0)


def test_summarization_abstains_for_other_tasks_and_short_inputs() -> None:
    assert SummarizationValidator().score(chat(), answer(GOOD_SUMMARY)).abstained
    short = chat("Summarize: the deploy failed because the disk was full.", task_type="summarization")
    assert SummarizationValidator().score(short, answer("Deploy failed: disk full.")).abstained
