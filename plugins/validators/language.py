"""Does the answer speak the caller's language? An offline, built-in language detector.

Detection has two stages, both on a bounded sample of the prose (code blocks excluded):

1. Script: Cyrillic (ru), Arabic (ar), Hangul (ko), Han with kana (ja) or without (zh). One
   `findall` collects the non-Latin letters; only text that has any pays for the per-script counts.
2. Latin-script languages (en, de, fr, es, it, pt, nl) by stop-word hits: each language's most
   frequent function words, merged at import into one dict word -> languages. Function words make
   up a third to a half of any running prose, so a few hundred words separate these seven well;
   the close pairs (es/pt, es/it) are only reported when the margin is clear.

The detector returns no language for text that is too short or has too few function words (code,
identifiers, tables), and the validator then abstains: it only fails an answer when it is sure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.types import ChatRequest, ChatResponse
from plugins.validators.base import ValidatorResult
from plugins.validators.structure import json_requested
from plugins.validators.text import Analysis, analyze, memo

_STOPWORDS: dict[str, str] = {
    "en": "the and of to in is that it for with as on are this be by or an was from at have has not you "
    "your which can will if but they their we there what when would should these those also more than "
    "then does do into only other its how each such may any all one been were so because while about "
    "here use using between after before why who where my me our us through without however",
    "de": "der die das und ist nicht ein eine einen einem einer zu den dem des mit sich auf für von auch "
    "es im wird werden sind wie oder aber wenn kann können dass bei nach noch nur über durch diese "
    "dieser dieses sie wir ich man zum zur als hat haben sein welche damit dann jedoch sowie um wurde "
    "keine mehr sehr hier",
    "fr": "le la les des du de un une et est que qui dans pour pas sur avec ce cette ces il elle ils nous "
    "vous ne se sont être avoir au aux par plus mais ou comme son sa ses leur qu c l j très aussi peut "
    "fait donc si tout en y été sont cela ça lorsque",
    "es": "el la los las del de que y en un una unos es por para con no se su sus lo le al como más pero "
    "este esta esto estos son está están también hay muy sin sobre cuando donde ser puede pueden cada "
    "entre porque sí ya fue ha han otro todo si",
    "it": "il lo la gli le di del della dei delle degli che è non per con un una uno in si come ma più "
    "anche questo questa sono essere ha hanno nel nella al alla dal dalla se ci da quando dove perché "
    "molto tutto può possono ogni tra suo sua loro cosa solo ancora già l dell all",
    "pt": "o os as de do da dos das que é não em um uma para com por se no na nos nas mais como mas ao aos "
    "à isso isto este esta ser está são tem têm pode podem muito também quando onde porque seu sua ou "
    "já entre sobre até pelo pela cada você um",
    "nl": "de het een en van is dat die in te op voor met zijn niet aan er om ook als bij maar door naar "
    "dan worden wordt kan kunnen deze dit wat wel nog zo hij ze je u uit heeft hebben geen meer moet "
    "moeten omdat wanneer waar hoe",
}
LATIN_LANGUAGES: tuple[str, ...] = tuple(_STOPWORDS)
SCRIPT_LANGUAGES: tuple[str, ...] = ("ru", "ar", "zh", "ja", "ko")
SUPPORTED_LANGUAGES: frozenset[str] = frozenset(LATIN_LANGUAGES + SCRIPT_LANGUAGES)



def _stop_index() -> dict[str, tuple[int, ...]]:
    """Stop word -> indexes (into LATIN_LANGUAGES) of the languages that use it."""
    index: dict[str, tuple[int, ...]] = {}
    for position, language in enumerate(LATIN_LANGUAGES):
        for word in _STOPWORDS[language].split():
            if position not in index.get(word, ()):
                index[word] = (*index.get(word, ()), position)
    return index


_STOP_INDEX = _stop_index()
ALL_STOPWORDS: frozenset[str] = frozenset(_STOP_INDEX)

# Names of each language, in the supported languages; used to map `request.language` values and
# to notice prompts that ask for an answer in another language.
_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("english", "englisch", "anglais", "inglés", "ingles", "inglese", "inglês", "engels", "английск"),
    "de": ("german", "deutsch", "allemand", "alemán", "aleman", "tedesco", "alemão", "duits", "немецк"),
    "fr": ("french", "französisch", "francais", "français", "francés", "frances", "francese", "francês",
           "frans", "французск"),
    "es": ("spanish", "spanisch", "espagnol", "español", "espanol", "spagnolo", "espanhol", "spaans",
           "испанск"),
    "it": ("italian", "italienisch", "italien", "italiano", "italiaans", "итальянск"),
    "pt": ("portuguese", "portugiesisch", "portugais", "portugués", "portoghese", "português", "portugues",
           "portugees"),
    "nl": ("dutch", "niederländisch", "néerlandais", "holländisch", "neerlandés", "olandese", "holandês",
           "nederlands"),
    "ru": ("russian", "russisch", "russe", "ruso", "russo", "русск"),
    "zh": ("chinese", "chinesisch", "chinois", "chino", "cinese", "chinês", "chinees", "mandarin", "中文",
           "汉语", "漢語"),
    "ja": ("japanese", "japanisch", "japonais", "japonés", "giapponese", "japonês", "japans", "日本語"),
    "ko": ("korean", "koreanisch", "coréen", "coreano", "koreaans", "한국어"),
    "ar": ("arabic", "arabisch", "arabe", "árabe", "arabo", "عربي", "العربية"),
}
_CODE_BY_NAME = {name: code for code, names in _NAMES.items() for name in names}
_TRANSLATE_WORDS = ("translat", "übersetz", "tradu", "vertaal", "перевед", "翻译", "翻訳", "번역", "ترجم")

_NON_LATIN = re.compile(r"[\u0400-\u04ff\u0600-\u06ff\u0750-\u077f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                        r"\uac00-\ud7af\u1100-\u11ff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")

SAMPLE_CHARS = 3000
SAMPLE_WORDS = 250
MIN_WORDS = 8
MIN_STOPWORD_HITS = 3
MIN_STOPWORD_SHARE = 0.12


@dataclass(frozen=True, slots=True)
class Detection:
    """`language` is an ISO 639-1 code or None (unsure); `confidence` 0..1 (the winner's margin)."""

    language: str | None
    confidence: float
    reason: str


def _detect_script(sample: str) -> Detection | None:
    """A non-Latin script language, if one dominates the sample."""
    if sample.isascii():
        return None
    foreign = "".join(_NON_LATIN.findall(sample))
    letters = max(1, len(sample) - sample.count(" ") - sample.count("\n"))
    if len(foreign) < 0.2 * letters:
        return None
    han, kana = len(_HAN.findall(foreign)), len(_KANA.findall(foreign))
    counts = {
        "ru": len(_CYRILLIC.findall(foreign)),
        "ar": len(_ARABIC.findall(foreign)),
        "ko": len(_HANGUL.findall(foreign)),
        "ja" if kana >= 0.1 * (han + kana) else "zh": han + kana,
    }
    language = max(counts, key=counts.__getitem__)
    share = counts[language] / len(foreign)
    return Detection(language, share, f"{language} script, {counts[language]} characters")


def detect(analysis: Analysis) -> Detection:
    """The natural language of an analysed text's prose."""
    script = _detect_script(analysis.prose[:SAMPLE_CHARS])
    if script is not None:
        return script
    words = analysis.words[:SAMPLE_WORDS]
    if len(words) < MIN_WORDS:
        return Detection(None, 0.0, f"too little prose ({len(words)} words)")
    hits = [0] * len(LATIN_LANGUAGES)
    total = 0
    for word in words:
        languages = _STOP_INDEX.get(word)
        if languages is not None:
            total += 1
            for index in languages:
                hits[index] += 1
    ranked = sorted(range(len(hits)), key=hits.__getitem__, reverse=True)
    best, second = hits[ranked[0]], hits[ranked[1]]
    if best < MIN_STOPWORD_HITS or total < MIN_STOPWORD_SHARE * len(words):
        return Detection(None, 0.0, f"too few function words ({total} of {len(words)})")
    language = LATIN_LANGUAGES[ranked[0]]
    return Detection(language, (best - second) / best, f"{language}: {best} function words, next {second}")


def detect_text(text: str) -> Detection:
    """`detect` on the first `SAMPLE_CHARS` characters of a text (memoised on that sample: prompts
    repeat across the cascade's attempts, and the cache never holds more than the samples)."""
    return _detect_sample(text[:SAMPLE_CHARS])


@memo(maxsize=128)
def _detect_sample(sample: str) -> Detection:
    return detect(analyze(sample))


def normalize_language(value: str | None) -> str | None:
    """ISO 639-1 code for a `request.language` value ("de", "de-AT", "pt_BR", "German", "Deutsch")."""
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered in _CODE_BY_NAME:
        return _CODE_BY_NAME[lowered]
    return lowered.replace("_", "-").split("-")[0] or None


def _asks_for(prompt_lower: str, language: str) -> bool:
    """Whether the prompt names `language` or asks for a translation."""
    return any(word in prompt_lower for word in _TRANSLATE_WORDS) or any(
        name in prompt_lower for name in _NAMES.get(language, ())
    )


STRONG_MARGIN = 0.4


class LanguageValidator:
    """The answer's language must be `request.language` when given, else the language of the last
    user message. Abstains on JSON answers, when either side cannot be told (short, code,
    unsupported language), on translation tasks without `request.language`, and when the prompt
    itself names the answer's language or asks for a translation. A clear mismatch is a hard
    failure: an answer in a language the caller did not write in is unusable to them."""

    name = "language"
    default_weight = 1.5

    def score(self, request: ChatRequest, response: ChatResponse) -> ValidatorResult:
        if not response.text or response.text.isspace():
            return ValidatorResult.abstain(self.name, "no text")
        if json_requested(request) or response.text.lstrip()[:1] in ("{", "["):
            return ValidatorResult.abstain(self.name, "structured data, not prose")
        expected = normalize_language(request.language)
        prompt = ""
        if expected is None:
            if request.task_type == "translation":
                return ValidatorResult.abstain(self.name, "translation without a target language")
            prompt = request.last_user_text()
            asked = detect_text(prompt)
            if asked.language is None or asked.confidence < STRONG_MARGIN / 2:
                return ValidatorResult.abstain(self.name, f"prompt language unclear: {asked.reason}")
            expected = asked.language
        elif expected not in SUPPORTED_LANGUAGES:
            return ValidatorResult.abstain(self.name, f"no profile for language {expected!r}")
        got = detect(analyze(response.text))
        if got.language is None:
            return ValidatorResult.abstain(self.name, f"answer language unclear: {got.reason}")
        if got.language == expected:
            return ValidatorResult.of(self.name, 10.0, f"answer is in {expected}")
        if request.language is None and _asks_for(prompt[: SAMPLE_CHARS * 2].lower(), got.language):
            return ValidatorResult.abstain(self.name, f"prompt asks for {got.language} or a translation")
        if got.confidence >= STRONG_MARGIN:
            return ValidatorResult.of(self.name, 1.0, f"answer is in {got.language}, expected {expected}")
        return ValidatorResult.of(self.name, 4.0, f"answer looks like {got.language}, expected {expected}")
