"""What a visit transcript states, read by medspaCy: symptoms reported and denied, medications, allergies,
measurements said aloud and the clinician's examination findings, each with the turns it rests on.

medspaCy's target matcher finds the concepts (clinical_notes.transcript_terms) and its ConText component
decides negation, experiencer (family), history and hypothetical ("if you get chest pain") within each turn.
Across turns, a clinician's question answered by the patient is read together: "[doctor] any fever or
chills? [patient] no." denies fever and chills. Who spoke matters to that reading; when the speaker tags do
not fit it (the question tagged as the patient's, the answer as the doctor's, a first-person complaint
tagged as the doctor's: speech recognition swaps tags), the fact is kept as uncertain, never inverted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from clinical_notes.transcript import CLINICIANS, Transcript, Turn
from clinical_notes.transcript_terms import (
    AFFIRMATIVE_ANSWERS,
    BODY_PARTS,
    CONTINUE_CUES,
    DOSE_UNITS,
    DRUG_NAMES,
    DRUG_STEMS,
    EXAM_END,
    EXAM_START,
    FINDING_WORDS,
    FREQUENCIES,
    HOPED_CUES,
    INSTRUCTION_CUES,
    MANOEUVRE_CUES,
    MEASURES,
    MORE_DRUG_NAMES,
    NEGATIVE_ANSWERS,
    NEGATIVE_WHOLE_ANSWERS,
    NOT_DRUGS,
    PAIN_WORDS,
    PAST_USE_CUES,
    PLAN_CUES,
    STOP_CUES,
    STUDY_WORDS,
    SYMPTOMS,
    TAKING_CUES,
    WEIGHT_CHANGES,
)

Status = Literal["reported", "denied"]
MedStatus = Literal["taking", "planned", "continuing", "stopped", "stopping", "named"]
MIN_STEMMED_DRUG = 6  # a stem match needs a word this long ("ramipril", not "pril")
CUE_WINDOW = 8  # tokens after a drug name read for plan, stop or taking cues
# and before it: "i'm going to prescribe you , you know , an extra dose of lasix".
CUE_WINDOW_BEFORE = 12
CONTINUE_WINDOW = 6  # tokens before a drug read for "continue your ..."
FREQUENCY_WINDOW = 14  # tokens after a drug name read for how often
# Tokens after a drug name read for its dose ("her lisinopril has also been increased up to 10 milligrams");
# the next drug's name ends them.
DOSE_WINDOW = 14
# How people deny in conversation, beyond ConText's default (clinical-note) negation cues.
SPOKEN_NEGATIONS = (
    "nothing",
    "none",
    "never",
    "not really",
    "not any",
    "do n't have",
    "did n't have",
    "have n't had",
    "have n't noticed",
    "have n't been having",
    "have not had",
    "not having",
    "ca n't recall",
    "do n't recall",
    "do n't remember",
    "do n't think",
    "no more",
)
ASK_WINDOW = 12  # tokens before a concept read for a question's words
CHECKING_CUES = ("make sure", "just checking", "just to check", "to confirm", "double check", "double-check")
QUESTION_CUES = (
    "have you",
    "do you",
    "did you",
    "are you",
    "any",
    "how about",
    "what about",
    "is there",
    "are there",
    "does it",
    "do your",
    "are your",
    "is your",
    "you been having",
    "you having",
    "you had",
)
# A wish is not a report ("i wish i had some weight loss"; its "some" does not end the wish's scope).
WISHED = [
    {"LOWER": "wish"},
    {"LOWER": "i"},
    {"LOWER": {"IN": ["had", "could", "was", "were"]}},
    {"LOWER": {"IN": ["some", "a", "little", "bit", "of"]}, "OP": "*"},
]
# A turn that opens with "no ," "no just" or "no i" answers what came before; it does not deny what
# follows ("no , the weight loss has really decreased all the pain", "no just kind of a headache", "no i
# wish unfortunately i've gained some weight"; a denial after it has its own cue: "no i have n't had"):
# a pseudo-cue, so ConText's "no" does not negate the turn.
NO_OPENERS = ["no", "nope", "nah"]
ANSWERING_NO: list[dict[str, Any]] = [
    {"LOWER": {"IN": NO_OPENERS}, "IS_SENT_START": True},
    {"LOWER": {"IN": [",", "just", "i", "i've", "i'm", "it", "it's", "that's"]}},
]
# "i do n't have quite as much shortness of breath" has it, less: a pseudo-cue, so ConText does not deny it.
LESS_OF = [
    {"LOWER": {"IN": ["not", "n't"]}},
    {"LOWER": {"IN": ["have", "had", "get", "feel"]}, "OP": "?"},
    {"LOWER": {"IN": ["quite", "nearly"]}, "OP": "?"},
    {"LOWER": "as"},
    {"LOWER": {"IN": ["much", "many", "bad", "often"]}},
]
UNSURE = [{"LOWER": {"IN": ["not", "n't"]}}, {"LOWER": {"IN": ["sure", "know"]}}]
UNSURE_IF = [*UNSURE, {"LOWER": {"IN": ["if", "whether"]}}]
UNKNOWN_FEEL = [
    *UNSURE,
    {"LOWER": "what"},
    {"LOWER": {"IN": ["that", "it", "this"]}},
    {"LOWER": {"IN": ["feels", "is"]}},
]
WARNED_OF = ("watch for", "watch out for", "look out for", "keep an eye out for")
# "i just can't stop itching" reports the itching at its worst.
CANT_STOP = [{"LOWER": {"IN": ["not", "n't", "cannot"]}}, {"LOWER": "stop"}]
# "this isn't the worst headache you've ever had" grades the headache; it does not deny it.
NOT_THE_WORST = [
    {"LOWER": {"IN": ["not", "n't", "isn't"]}},
    {"LOWER": "the"},
    {"LOWER": {"IN": ["worst", "first", "only"]}},
]
# A clinician listing what could happen ("the risks of bleeding, infection"): nothing the patient has.
RISKS = [
    {"LOWER": {"IN": ["risk", "risks", "complications", "side"]}},
    {"LOWER": {"IN": ["of", "include", "including", "are", "effects"]}},
]
# Who else a patient speaks of, beyond ConText's family words ("my kids have had a cough").
HOUSEHOLD = [
    {"LOWER": {"IN": ["kids", "kid", "grandkids", "boyfriend", "girlfriend", "roommate", "baby"]}},
    {"LOWER": {"IN": ["'s", "'"]}, "OP": "?"},
]
# A clinician asking about the family: what the answer names is the family's ("my mom had depression").
FAMILY_QUESTION = ("run in your family", "runs in your family", "family history", "anyone in your family")
# Words that give a symptom word another sense next to them ("my stream is weak", "numbing medicine").
OTHER_SENSE = {"weakness": ("stream", "signal"), "numbness": ("medicine", "shot", "injection", "cream")}
# Questions a turn tagged as the patient's may hold (speech recognition swaps tags): not the patient's report.
SECOND_PERSON_ASKS = ("have you", "do you", "did you", "are you", "you been having", "you having")
# How a clinician dictates about the patient without "you" or "she" ("chief complaint is left arm pain").
DICTATION_CUES = ("chief complaint", "here for", "presents with", "presenting with", "complains of")
# How a clinician states why the patient came ("you're coming in today for some right ankle pain").
REASON_CUES = ("here for", "in for", "in today for", "here today for", "being seen for", "seen today for")
# The reason for the visit as first said: where (its opening turns), how much of it is quoted, and its cues.
REASON_TURNS = 14
REASON_WORDS, REASON_BEFORE, REASON_AFTER = 30, 10, 16  # words quoted of a run-on opening, around its cue
VISIT_REASON_CUES = (
    *REASON_CUES,
    "comes in for",
    "coming in for",
    "chief complaint",
    "problems with",
    "problem with",
)
# Where a spoken denial stops: "no fever some chills and i do feel a little nauseous" denies fever only
# (speech recognition writes no punctuation to end the negation's scope).
SPOKEN_TERMINATIONS = ("some", "a little", "a bit", "i do", "and i", "kinda", "just")
QUESTION_OPENERS = frozenset(
    {"any", "do", "does", "did", "have", "has", "are", "is", "was", "were", "had", "how", "what", "when"}
)
# A clinician saying what they are about to do, not what they found ("i'm gon na check your lungs").
INTENT_CUES = (
    " if ",
    " we often ",
    " we like to ",
    " candidate ",
    " gon na ",
    " going to ",
    " let me ",
    " i'll ",
    " i will ",
    " let's ",
    " i want to ",
    " i wan na ",
)
FIRST_PERSON = frozenset({"i", "i'm", "i've", "me", "my", "i'd", "myself"})
# An answer that denies whatever of the question it does not name.
REST_DENIED = (
    "everything else has been",
    "everything else is",
    "nothing else",
    "not in a while",
    "not recently",
)
SECOND_OR_THIRD = frozenset(
    {"you", "your", "you've", "you're", "she", "he", "her", "his", "she's", "he's", "presents", "patient"}
)
SPOKEN = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
}
REPEATED = re.compile(r"\b(\w+)(?: \1\b)+")
# An exam announced for later has not begun (read as whole words: "bilateral" is not "later").
LATER = ("in a second", "in a minute", "in a moment", "later")
TAG_QUESTION = re.compile(r",?\s*\b(?:okay|ok|right|all right|alright|yeah|you know)\s*\?$", re.IGNORECASE)
# "show me the x-ray" asks to see a study (a voice command to the scribe); "it shows" reports its result.
RESULT_VERBS = re.compile(r"\b(?:shows|showed|shown|reveals|revealed|demonstrates|demonstrated)\b")
TRAILING_JOIN = re.compile(r"[\s,]*\b(?:and|or|but|so|with|now)$", re.IGNORECASE)  # a quote cut mid-list
READING_WINDOW = 16  # tokens after a measurement's name read for its value
PRESSURE_WINDOW = 40  # tokens after "blood pressure" read for an "N over M"
OWN_GAP, OWN_LEAD = 10, 3  # a patient's reading: tokens from its name, and words before the number read
READING_LEADS = frozenset({"is", "was", "at", "about", "around", "been", "'s", "of"})
NOT_A_READING = frozenset(
    {"if", "call", "below", "under", "goal", "target", "keep", "cuff", "machine", "monitor"}
)
DECADES = re.compile(r"(?:twen|thir|for|fif|six|seven|eigh|nine)ties")
MAX_READINGS = 12
READING_UNITS = frozenset(
    {"pounds", "lbs", "kilograms", "kg", "kilos", "percent", "%", "degrees", "mmhg", "bpm"}
)
TIME_UNITS = (
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "hour",
    "hours",
    "night",
    "nights",
)
ONSET_WORDS = (
    "ago",
    "yesterday",
    "today",
    "morning",
    "tonight",
    "weekend",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
HESITATION_WORD = r"(?:h+m+|u+h+m*|u+m+|m+h*m+|e+r+)"  # "hmm", "hmmm", "uhh", "umm", "mm", "er"
# "mm-hmm" and "uh-huh" are a yes, not two hesitations.
FILLERS = re.compile(rf"(?<![\w-]){HESITATION_WORD}(?![\w-])\s*,?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class SymptomFact:
    """A symptom the visit reports or denies, the turns that say so, onset or duration as said."""

    name: str
    status: Status
    turns: tuple[int, ...]
    said: str | None = None
    uncertain: str | None = None


@dataclass(frozen=True)
class MedicationFact:
    """A medication named in the visit, with dose and frequency as said."""

    name: str
    status: MedStatus
    turns: tuple[int, ...]
    dose: str | None = None
    frequency: str | None = None


@dataclass(frozen=True)
class SaidFact:
    """A measurement said aloud, an allergy mentioned, or an examination finding: its words and turns."""

    name: str
    text: str
    turns: tuple[int, ...]


@dataclass
class TranscriptFacts:
    """Everything composed from one transcript, and the polarity of each symptom per turn (the verifier's)."""

    symptoms: list[SymptomFact] = field(default_factory=list)
    medications: list[MedicationFact] = field(default_factory=list)
    measurements: list[SaidFact] = field(default_factory=list)
    own_readings: list[SaidFact] = field(default_factory=list)  # the patient's ("my a1c is six point seven")
    allergies: list[SaidFact] = field(default_factory=list)
    findings: list[SaidFact] = field(default_factory=list)
    reason: list[SaidFact] = field(default_factory=list)
    severity: list[SaidFact] = field(default_factory=list)
    polarity: dict[int, dict[str, set[Status]]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ the pipeline


CANONICAL = {phrase: name for name, phrases in SYMPTOMS.items() for phrase in phrases}
KNOWN_DRUGS = frozenset((*DRUG_NAMES, *MORE_DRUG_NAMES))
PAIN_LEAD_INS = ("started", "starts", "began", "to", "still", "really", "does", "kind", "of", "kinda", "also")
ANSWERED_BY_COLON = (": no", ": none")
# Written notes negate with "without any other"; spoken, "any other symptoms like a cough" asks, and a
# negation says its own "no" or "not".
ASKED_NOT_NEGATED = ("any other",)


def _phrase_pattern(phrase: str) -> list[dict[str, Any]]:
    return [{"LOWER": word} for word in phrase.split()]


@lru_cache(maxsize=1)
def pipeline() -> Any:
    """A blank spaCy English pipeline with a sentencizer, medspaCy's target matcher and ConText (no model
    download). Built once per process."""
    import medspacy  # noqa: F401  (registers the medspacy_* factories)
    import spacy
    from medspacy.context import ConTextRule
    from medspacy.target_matcher import TargetRule

    nlp = spacy.blank("en")
    # Speech recognition marks a word cut off with a hyphen ("nausea or vomiting-"): the word is still said.
    tokenizer: Any = nlp.tokenizer
    suffixes = [*(nlp.Defaults.suffixes or ()), r"(?<=[a-z])-"]
    tokenizer.suffix_search = spacy.util.compile_suffix_regex(suffixes).search
    nlp.add_pipe("sentencizer")
    matcher: Any = nlp.add_pipe("medspacy_target_matcher")
    rules = []
    for name, phrases in SYMPTOMS.items():
        for phrase in phrases:
            rules.append(
                TargetRule(phrase, "SYMPTOM", pattern=_phrase_pattern(phrase), metadata={"name": name})
            )
    located = {"LOWER": {"IN": list(BODY_PARTS)}}
    pain = {"LOWER": {"IN": list(PAIN_WORDS)}}
    owner = {"LOWER": {"IN": ["my", "the", "your", "her", "his", "both", "left", "right"]}, "OP": "*"}
    where = {"LOWER": {"IN": ["in", "on"]}}
    # The longest match wins: "back pain on my right side" is back pain, named by its first body part.
    # "my wrist started to hurt", "my knee still really hurts".
    between = {"LOWER": {"IN": list(PAIN_LEAD_INS)}, "OP": "+"}
    for pattern in (
        [located, pain],
        [located, between, pain],
        [pain, where, owner, located],
        [located, owner, pain],
        [located, pain, where, owner, located],
    ):
        rules.append(
            TargetRule("located pain", "SYMPTOM", pattern=pattern, metadata={"name": "located pain"})
        )
    for name, changes in WEIGHT_CHANGES.items():
        for change in changes:
            rules.append(TargetRule(name, "SYMPTOM", pattern=change, metadata={"name": name}))
    for name, phrases in MEASURES.items():
        for phrase in phrases:
            rules.append(
                TargetRule(phrase, "MEASURE", pattern=_phrase_pattern(phrase), metadata={"name": name})
            )
    stem = "(" + "|".join(DRUG_STEMS) + ")$"
    stemmed = {"REGEX": stem, "NOT_IN": list(NOT_DRUGS)}
    rules.append(TargetRule("drug", "DRUG", pattern=[{"LOWER": stemmed, "LENGTH": {">=": MIN_STEMMED_DRUG}}]))
    for name in (*DRUG_NAMES, *MORE_DRUG_NAMES):
        rules.append(TargetRule(name, "DRUG", pattern=_phrase_pattern(name)))
    matcher.add(rules)
    context: Any = nlp.add_pipe("medspacy_context", config={"rules": None})
    # ConText's ": no" negates backward ("Fever: no."); before a symptom it opens a list ("Constitutional:
    # No fevers, chills."), which its forward "no" reads, so the backward cue needs the answer to end there.
    context.add(
        [
            r
            for r in ConTextRule.from_json(context.DEFAULT_RULES_FILEPATH)
            if r.literal not in (*ANSWERED_BY_COLON, *ASKED_NOT_NEGATED)
        ]
    )
    context.add(
        [
            ConTextRule(
                cue,
                "NEGATED_EXISTENCE",
                direction="BACKWARD",
                pattern=[*_phrase_pattern(cue), {"IS_PUNCT": True}],
            )
            for cue in ANSWERED_BY_COLON
        ]
    )
    context.add([ConTextRule(cue, "NEGATED_EXISTENCE", direction="FORWARD") for cue in SPOKEN_NEGATIONS])
    context.add([ConTextRule(cue, "TERMINATE", direction="TERMINATE") for cue in SPOKEN_TERMINATIONS])
    context.add([ConTextRule("wish i had", "HYPOTHETICAL", direction="FORWARD", pattern=WISHED)])
    context.add([ConTextRule("no ,", "NEGATED_EXISTENCE", direction="PSEUDO", pattern=ANSWERING_NO)])
    # "hmmm no i had diarrhea last week": the same, after a hesitation.
    hesitant = [
        {"LOWER": {"REGEX": f"^{HESITATION_WORD}$"}, "IS_SENT_START": True},
        {"LOWER": {"IN": NO_OPENERS}},
        ANSWERING_NO[1],
    ]
    context.add([ConTextRule("uh no ,", "NEGATED_EXISTENCE", direction="PSEUDO", pattern=hesitant)])
    context.add([ConTextRule("not as much", "NEGATED_EXISTENCE", direction="PSEUDO", pattern=LESS_OF)])
    context.add([ConTextRule("can't stop", "NEGATED_EXISTENCE", direction="PSEUDO", pattern=CANT_STOP)])
    context.add(
        [ConTextRule("not the worst", "NEGATED_EXISTENCE", direction="PSEUDO", pattern=NOT_THE_WORST)]
    )
    context.add([ConTextRule("risks of", "HYPOTHETICAL", direction="FORWARD", pattern=RISKS)])
    # "i'm not sure if i had a fever"; "i've never had heartburn, so i'm not sure what that feels like".
    context.add([ConTextRule("not sure if", "POSSIBLE_EXISTENCE", direction="FORWARD", pattern=UNSURE_IF)])
    context.add(
        [
            ConTextRule(
                "not sure what it feels like",
                "POSSIBLE_EXISTENCE",
                direction="BACKWARD",
                pattern=UNKNOWN_FEEL,
            )
        ]
    )
    # "what i want you to watch for is ... severe diarrhea": a warning of what may come.
    context.add([ConTextRule(cue, "HYPOTHETICAL", direction="FORWARD") for cue in WARNED_OF])
    context.add([ConTextRule("my kids", "FAMILY", direction="FORWARD", pattern=HOUSEHOLD)])
    return nlp


def _name(span: Any) -> str:
    """The canonical name of a matched concept ("pain in my knee" → "knee pain")."""
    rule = span._.target_rule
    name = (rule.metadata or {}).get("name") if rule is not None else None
    if name == "located pain":
        return _pain_of(next(t.lower_ for t in span if t.lower_ in BODY_PARTS))
    return str(name or span.text.lower())


def is_hesitation(word: str) -> bool:
    """Whether a word is a hesitation sound ("um", "hmmm")."""
    return re.fullmatch(HESITATION_WORD, word.lower()) is not None


def _pain_of(part: str) -> str:
    """The pain of a body part by its name ("knees" → "knee pain"; "my belly hurts" is abdominal pain)."""
    located = f"{part.rstrip('s') if part not in ('legs', 'hips') else part[:-1]} pain"
    return CANONICAL.get(located, located)


def _one_part(text: str) -> str | None:
    """The pain of the one body part a text names, if it names exactly one ("back then", "a step back" and
    "come back" name no back)."""
    words = _words(text)
    parts = {
        _pain_of(w)
        for i, w in enumerate(words)
        if w in BODY_PARTS
        and not (
            w == "back"
            and (words[i + 1 : i + 2] in (["then"], ["to"], ["in"]) or words[i - 1 : i] in BACK_VERBS)
        )
    }
    return parts.pop() if len(parts) == 1 else None


BACK_VERBS = (
    ["step"],
    ["come"],
    ["came"],
    ["go"],
    ["went"],
    ["get"],
    ["got"],
    ["way"],
    ["coming"],
    ["going"],
)
DEICTIC = frozenset({"here", "there", "this", "that"})


def _pointed_at(m: _Mention, text: str) -> str:
    """An unlocated pain asked about where the clinician points ("exam of the low back. any pain here?"):
    the pain of the body part named last before the question; any other mention as it is named."""
    if m.name != "pain" or not DEICTIC & set(_words(m.sentence)):
        return m.name
    parts = [w for w in _words(text[: m.sentence_start]) if w in BODY_PARTS]
    return _pain_of(parts[-1]) if parts else m.name


def _words(text: str, numbers: bool = False) -> list[str]:
    """A text's words, lower-cased; with `numbers`, its written numbers too ("10")."""
    return re.findall(r"[a-z0-9][a-z0-9'\-]*" if numbers else r"[a-z][a-z0-9'\-]*", text.lower())


def _starts(text: str, openers: Iterable[str]) -> bool:
    said = " ".join(_words(text))
    return any(said == o or said.startswith(o + " ") for o in openers)


def _is_question(sentence: str) -> bool:
    """A question, not a statement closed by a tag ("... a murmur, okay?" states the murmur); speech
    recognition often writes none of the punctuation, so a question's opening words count too."""
    said = TAG_QUESTION.sub(".", sentence.rstrip())
    words = [w for w in _words(said) if w not in LEAD_INS]
    return said.endswith("?") or bool(words and words[0] in QUESTION_OPENERS and not said.endswith("."))


YES_NO_OPENERS = frozenset(
    {
        "any",
        "anything",
        "do",
        "does",
        "did",
        "have",
        "has",
        "are",
        "is",
        "was",
        "were",
        "had",
        "can",
        "could",
        "no",
    }
)
LEAD_INS = frozenset({"and", "so", "okay", "ok", "all", "right", "alright", "um", "uh", "now", "also", "but"})
WH_WORDS = frozenset({"what", "how", "where", "when", "why", "which", "who"})
LISTED = 3  # symptoms that make a question a list to answer yes or no to


def _yes_no(m: _Mention, alongside: int = 1) -> bool:
    """Whether a question mentioning a symptom is answered by yes or no ("any fever?", "do you have chest
    pain?"), not by a description ("what have you taken for the pain?"), and is not the part a speaker
    corrects ("joint pain ... i mean, muscle aches?" asks about muscle aches)."""
    sentence = m.sentence.lower()
    corrected = sentence.rfind("i mean")
    if corrected >= 0 and m.start - m.sentence_start < corrected:
        return False
    asked = sentence[corrected + len("i mean") :] if corrected >= 0 else sentence  # the corrected question
    words = [w for w in _words(asked) if w not in LEAD_INS and w != "like"]
    before = " " + " ".join(_words(m.sentence[: max(0, m.start - m.sentence_start)])[-ASK_WINDOW:]) + " "
    if any(f" {cue} " in before for cue in QUESTION_CUES):
        return True
    # "specifically feeling sick, fever, rashes, numbness?" lists what the question before it asked about;
    # `alongside`: the symptoms its sentence asks about.
    listed = alongside >= LISTED and not WH_WORDS & set(words)
    return bool(words) and (words[0] in YES_NO_OPENERS or "any" in words[:4] or len(words) <= 4 or listed)


def _joined(asked: list[_Mention]) -> bool:
    """Whether the symptoms asked together are joined by "and" alone in one sentence ("do you get numbing
    and tingling?"), so that a yes takes them all; "any nausea or vomiting?" answered yes says not which."""
    if len({m.sentence_start for m in asked}) != 1:
        return False
    offset = asked[0].sentence_start
    first, last = min(m.start for m in asked) - offset, max(m.start for m in asked) - offset
    between = f" {' '.join(_words(asked[0].sentence[first:last]))} "
    return " and " in between and not any(f" {w} " in between for w in ("or", "any", "anything"))


def spoken_number(word: str) -> float | None:
    """A number as said ("twenty" → 20, "7.2" → 7.2); None when the word is no number."""
    word = word.lower().replace(",", "")
    try:
        return float(word)
    except ValueError:
        pass
    if "-" in word:
        parts = [SPOKEN.get(p) for p in word.split("-")]
        return float(sum(p for p in parts if p is not None)) if all(p is not None for p in parts) else None
    value = SPOKEN.get(word)
    return float(value) if value is not None else None


SPOKEN_DECIMAL = re.compile(r"(?<=[a-z]) \. (?=[a-z])")


def spoken_numbers(text: str) -> list[float]:
    """Every number said in a text, written or spoken ("one twenty over eighty" gives 1, 20, 80; "twenty
    five" gives 25 as well as 20 and 5; "ninety eight point six" gives 98.6 too)."""
    said = SPOKEN_DECIMAL.sub(" point ", text.lower())  # speech recognition's "twelve . five" for 12.5
    words = re.findall(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)?", said)
    found: list[float] = []
    previous: float | None = None
    whole: float | None = None  # the number the words so far make, for a decimal point after it
    pointed: float | None = None
    for word in words:
        value = spoken_number(word)
        if value is None:
            pointed = whole if word == "point" else None
            previous = whole = None
            continue
        found.append(value)
        whole = value
        if previous is not None and previous >= 20 and previous % 10 == 0 and 0 < value < 10:
            whole = previous + value  # "twenty five"
            found.append(whole)
        if previous is not None and 1 <= previous <= 9 and 10 <= value < 100 and word.isalpha():
            found.append(previous * 100 + value)  # "one twenty" as a blood pressure is 120
        if value in (100, 1000) and previous is not None and previous < 10:
            whole = previous * value  # "eight hundred", "two thousand"
            found.append(whole)
        if pointed is not None and value < 10:
            found.append(pointed + value / 10)  # "zero point four"
        pointed = None
        previous = value
    return found


def _shown(value: float) -> str:
    return f"{value:g}"


# ------------------------------------------------------------------------------------------ reading turns


@dataclass
class _Mention:
    name: str
    negated: bool
    question: bool
    person: Literal["first", "other", "none"]
    sentence: str
    start: int
    sentence_start: int


def _person(sentence: str) -> Literal["first", "other", "none"]:
    """Whom a clinician's sentence is about: the patient ("you", "she", a dictated "57-year-old male who
    presents with"), the speaker ("I"), or neither."""
    words = set(_words(sentence))
    said = " ".join(_words(sentence))
    if words & SECOND_OR_THIRD or any(w.endswith("year-old") for w in words) or _cued(said, DICTATION_CUES):
        return "other"
    return "first" if words & FIRST_PERSON else "none"


def _cued(said: str, cues: Iterable[str]) -> bool:
    """Whether words (joined by spaces) hold one of the cues as whole words."""
    return any(f" {cue} " in f" {said} " for cue in cues)


def _before(doc: Any, ent: Any) -> str:
    """The words of the concept's sentence shortly before it."""
    return " ".join(t.lower_ for t in doc[max(ent.sent.start, ent.start - ASK_WINDOW) : ent.start])


def _asked(doc: Any, ent: Any) -> bool:
    """Whether a clinician asks about the concept: the sentence is a question, or a question's words come
    shortly before it (speech recognition runs "... okay well have you had any numbness" together)."""
    if _is_question(ent.sent.text) and ent.sent.end - ent.end <= ASK_WINDOW:
        return True  # a question mark far after the concept closes another question of a long turn
    around = doc[max(ent.sent.start, ent.start - ASK_WINDOW) : min(ent.sent.end, ent.end + ASK_WINDOW)]
    if _cued(" ".join(t.lower_ for t in around), CHECKING_CUES):
        return True  # "no shortness of breath, just wanna make sure": a denial put to the patient to confirm
    if _negated(ent):
        return False  # "you don't have any edema" states; only a question mark makes it asked
    before = f" {_before(doc, ent)} "
    asks = max((before.rfind(f" {cue} ") for cue in QUESTION_CUES), default=-1)
    # "how are you ... you're here for some numbness" states why they came, after the question's words.
    states = max((before.rfind(f" {cue} ") for cue in REASON_CUES), default=-1)
    return asks >= 0 and asks > states


def _asks_you(doc: Any, ent: Any) -> bool:
    """Whether a patient-tagged turn asks about the concept ("have you experienced any numbness")."""
    return not _negated(ent) and _cued(_before(doc, ent), SECOND_PERSON_ASKS)


def _mentions(doc: Any, clinician: bool = False) -> list[_Mention]:
    """The symptoms of a turn or statement with their reading; `clinician`: read spoken question cues."""
    found = []
    for ent in doc.ents:
        if ent.label_ != "SYMPTOM":
            continue
        if ent._.is_family or ent._.is_hypothetical or ent._.is_uncertain:
            continue
        if ent._.is_historical and not _negated(ent):
            continue  # "used to have", "history of": not what the patient has now
        around = {t.lower_ for t in doc[max(ent.sent.start, ent.start - 3) : ent.end + 2]}
        if around & set(OTHER_SENSE.get(_name(ent), ())):
            continue
        sentence = ent.sent.text
        found.append(
            _Mention(
                _name_in(doc, ent),
                _negated(ent),
                _asked(doc, ent) if clinician else _is_question(sentence) or _asks_you(doc, ent),
                _person(sentence),
                sentence,
                ent.start_char,
                ent.sent.start_char,
            )
        )
    # "pain" alone is kept only where no located pain names it better in the same sentence.
    located = {(m.sentence, m.negated) for m in found if m.name.endswith(" pain") and m.name != "pain"}
    return [m for m in found if not (m.name == "pain" and (m.sentence, m.negated) in located)]


def _name_in(doc: Any, ent: Any) -> str:
    """The concept's name, read on past it: "pain in the back of my head" is the head's."""
    if ent[-1].lower_ in BODY_PARTS and ent.end + 1 < len(doc) and doc[ent.end].lower_ == "of":
        part = next((t.lower_ for t in doc[ent.end + 1 : ent.end + 4] if t.lower_ in BODY_PARTS), None)
        if part is not None:
            return _pain_of(part)
    return _name(ent)


def _negated(ent: Any, within: int | None = None) -> bool:
    """Negated by a cue outside the concept's own words ("i ca n't catch my breath" reports it); `within`:
    by a cue at most that many tokens before it (an unpunctuated turn is one sentence, ConText's scope)."""
    return any(
        m.category == "NEGATED_EXISTENCE"
        and not ent.start <= m.modifier_span[0] < ent.end
        and (within is None or m.modifier_span[1] >= ent.start - within)
        for m in ent._.modifiers
    )


def _duration(doc: Any, sentence: str, at: int) -> str | None:
    """Onset or duration as said in a sentence ("for about two weeks", "three days ago", "since monday"),
    within DURATION_WINDOW tokens of the symptom said at character `at` (a run-on turn's "your last
    treatment just a few days ago ... the fatigue" dates the treatment)."""
    from spacy.matcher import Matcher

    matcher = Matcher(doc.vocab)
    number = {"LIKE_NUM": True}
    some = {
        "LOWER": {"IN": ["a", "few", "couple", "of", "several", "about", "like", "almost", "over", "the"]},
        "OP": "*",
    }
    unit_lower = {"LOWER": {"IN": list(TIME_UNITS)}}
    matcher.add(
        "for",
        [
            [{"LOWER": {"IN": ["for", "past", "last"]}}, some, number, unit_lower],
            [{"LOWER": "for"}, some, unit_lower],
        ],
    )
    matcher.add(
        "ago",
        [
            [some, number, unit_lower, {"LOWER": "ago"}],
            [{"LOWER": {"IN": ["a", "few", "couple"]}}, some, unit_lower, {"LOWER": "ago"}],
        ],
    )
    # "since monday", "since the fall"; "since it started" names no time.
    pronoun = {"LOWER": {"NOT_IN": ["it", "i", "you", "he", "she", "we", "they", "then", "that", "this"]}}
    matcher.add("since", [[{"LOWER": "since"}, {"IS_ALPHA": True, **pronoun}, {"IS_ALPHA": True, "OP": "?"}]])
    # "it started last week", "began about three days ago": an onset names a time ("start you on a new
    # medication" does not).
    when = {"LOWER": {"IN": [*TIME_UNITS, *ONSET_WORDS]}}
    matcher.add(
        "started",
        [
            [
                {"LOWER": {"IN": ["started", "began"]}},
                {"LOWER": {"IN": ["about", "like", "around", "in", "on", "over"]}, "OP": "?"},
                {"IS_ALPHA": True, "OP": "?"},
                {"IS_ALPHA": True, "OP": "?"},
                when,
            ]
        ],
    )
    best: str | None = None
    symptom = next((t.i for t in doc if t.idx >= at), len(doc))
    for _, start, end in matcher(doc):
        span = doc[start:end]
        if span.sent.text != sentence or start - symptom > DURATION_WINDOW or symptom - end > DURATION_WINDOW:
            continue
        text = span.text
        if best is None or len(text) > len(best):
            best = text
    return best


SHORT_ANSWER = 6  # words of an answer read whole for a no said inside it
FOLLOW_UPS = ("anything else", "any other", "or anything", "anything like that", "how about", "what about")
DURATION_WINDOW = 12  # tokens between a symptom and the onset or duration said of it
NO_WORDS = frozenset({"no", "nope", "nah"})
YES_WORDS = frozenset({"yes", "yeah", "yep", "yup"})


def _answer_polarity(text: str) -> Literal["negative", "affirmative", "other"]:
    cleaned = FILLERS.sub("", text).strip()
    said = " ".join(_words(cleaned))
    whole = (
        said in NEGATIVE_WHOLE_ANSWERS
    )  # "i don't." (but "i don't do any of that" is about something else)
    opening = _words(re.split(r"[.?!]", cleaned, maxsplit=1)[0])[:SHORT_ANSWER]  # "no . none of those . i do"
    affirms = re.search(r"\bi (?:do|have|did)\b(?! n't| not)", " ".join(opening))
    if set(opening) & NO_WORDS and affirms:
        return "other"  # "no i yeah i do i like to eat": both, so neither ("yeah no" stays a no)
    if whole or _starts(cleaned, NEGATIVE_ANSWERS) or any(phrase in said for phrase in REST_DENIED):
        return "negative"  # "a little congestion, but everything else has been okay" denies the rest
    if _starts(cleaned, NEGATIVE_WHOLE_ANSWERS):
        return "other"  # "i do n't do any of that": not the yes that "i do" opens
    if _starts(cleaned, AFFIRMATIVE_ANSWERS):
        return "affirmative"
    words = _words(cleaned)
    short = len(words) <= SHORT_ANSWER and not set(words) & YES_WORDS
    if short and (set(words) & NO_WORDS or "not really" in said):
        return "negative"  # "on my body no not really"
    return "other"


def _opens_with_no(doc: Any) -> bool:
    """Whether an answer opens with a bare no ("not really . maybe a bit of nausea .")."""
    first = next(iter(doc.sents), None)
    return first is not None and not first.ents and _answer_polarity(first.text) == "negative"


def _speakers_fit(question: Turn, answer: Turn) -> bool:
    return question.speaker in CLINICIANS and answer.speaker == "patient"


SWAPPED = "the speaker tags do not fit who asks and who answers (speech recognition may have swapped them)"
CLINICIAN_FIRST_PERSON = (
    "said in the first person in a turn tagged as the clinician's (speaker tags may be swapped)"
)


def exam_turns(transcript: Transcript) -> set[int]:
    """The clinician's turns between the cue that starts the examination and the one that ends it."""
    found: set[int] = set()
    in_exam = False
    for turn in transcript.turns:
        if turn.speaker not in CLINICIANS:
            continue
        text = REPEATED.sub(r"\1", " ".join(_words(turn.text)))  # "exam i i see" → "exam i see"
        if any(cue in text for cue in EXAM_START) and not _cued(text, LATER):
            in_exam = True
        if in_exam:
            found.add(turn.n)
            in_exam = not any(cue in text for cue in EXAM_END)  # the turn that moves on still holds findings
    return found


def read_symptoms(
    transcript: Transcript, docs: dict[int, Any], examined: set[int]
) -> tuple[list[SymptomFact], dict[int, dict[str, set[Status]]]]:
    """Symptoms reported and denied, turn by turn and by answer; and each turn's polarity per symptom."""
    facts: list[SymptomFact] = []
    polarity: dict[int, dict[str, set[Status]]] = {}
    if not transcript.tagged:
        return facts, polarity
    patient_asks: set[int] = set()  # turns tagged as the patient's that ask about a symptom
    for turn in transcript.turns:
        doc = docs[turn.n]
        mentions = _mentions(doc, turn.speaker in CLINICIANS)
        for m in mentions:
            status: Status = "denied" if m.negated else "reported"
            if not m.question:
                polarity.setdefault(turn.n, {}).setdefault(m.name, set()).add(status)
        previous = transcript.turn(turn.n - 1)
        after_patient_asks = previous is not None and previous.n in patient_asks
        family = (
            previous is not None
            and previous.speaker in CLINICIANS
            and _cued(" ".join(_words(previous.text)), FAMILY_QUESTION)
        )
        # An answer to a family-history question tells the family's history, not the patient's.
        statements = [] if family else [m for m in mentions if not m.question]
        if turn.speaker == "patient" and any(m.question for m in mentions):
            patient_asks.add(turn.n)
        for m in statements:
            status = "denied" if m.negated else "reported"
            said = _duration(doc, m.sentence, m.start) if status == "reported" else None
            if turn.n in examined:
                continue
            if turn.speaker == "patient" and m.name == "pain":
                # "it just hurts" after "your right ankle pain ... how did you fall": the part said in the
                # turn, or else in the clinician's turn before it, when just one is named.
                before = previous if previous is not None and previous.speaker in CLINICIANS else None
                if before is not None and before.n in examined:
                    continue  # "it hurts a little" as the clinician presses: the exam's finding
                own = _one_part(turn.text)
                located = own or (_one_part(before.text) if before is not None else None)
                cited = (before.n, turn.n) if before is not None and located and not own else (turn.n,)
                name = located or m.name
                polarity.setdefault(turn.n, {}).setdefault(name, set()).add(status)
                facts.append(SymptomFact(name, status, cited, said))
            elif turn.speaker == "patient" or (
                turn.speaker in CLINICIANS
                and m.person == "other"
                and not _contradicted(m, status, transcript.turn(turn.n + 1), docs)
            ):
                facts.append(SymptomFact(m.name, status, (turn.n,), said))
            elif turn.speaker in CLINICIANS and m.person == "first":
                facts.append(SymptomFact(m.name, status, (turn.n,), said, CLINICIAN_FIRST_PERSON))
            elif turn.speaker in CLINICIANS and after_patient_asks:
                facts.append(SymptomFact(m.name, status, (turn.n,), said, SWAPPED))
        per_sentence = Counter(m.sentence_start for m in mentions if m.question)
        asked = [
            m
            for m in mentions
            if m.question
            and _yes_no(m, per_sentence[m.sentence_start])
            and not (turn.n in examined and _manoeuvre(m))
        ]
        answer = transcript.turn(turn.n + 1)
        if answer is not None and (located := _where_it_hurts(turn, mentions, answer, docs[answer.n])):
            facts.append(SymptomFact(located, "reported", (turn.n, answer.n), None))
            polarity.setdefault(answer.n, {}).setdefault(located, set()).add("reported")
        if not asked or answer is None or answer.speaker == "unknown" or _answers_later_question(doc, asked):
            continue
        answer_polarity = _answer_polarity(answer.text)
        answer_mentions = _mentions(docs[answer.n], answer.speaker in CLINICIANS)
        answered = {m.name for m in answer_mentions}
        asked_names = {m.name for m in asked}
        names = list(dict.fromkeys(_pointed_at(m, turn.text) for m in asked if m.name not in answered))
        rest = any(phrase in " ".join(_words(answer.text)) for phrase in REST_DENIED)
        # An answer that opens with a bare no denies what was asked and the rest of it does not name.
        if answered & asked_names and not rest and not _opens_with_no(docs[answer.n]):
            picked = {m.name for m in answer_mentions if not m.negated and not m.question} & asked_names
            # An answer that picks what it has from the list denies the rest ("chest pain, shortness of
            # breath, or belly pain?" "shortness of breath."); one that only denies ("no fever" to
            # "cough? fever?") answers about what it names alone, and its own reading says so.
            # A yes before the pick may take more of the list ("yeah i ca n't see my ankles ... i gained").
            picks = bool(picked) and answer_polarity != "affirmative"
            answer_polarity = "negative" if picks else answer_polarity
            names = names if picks else []
        uncertain = None if _speakers_fit(turn, answer) else SWAPPED
        if answer_polarity == "negative":
            for name in names:
                facts.append(SymptomFact(name, "denied", (turn.n, answer.n), None, uncertain))
                if uncertain is None:
                    polarity.setdefault(answer.n, {}).setdefault(name, set()).add("denied")
        elif answer_polarity == "affirmative" and (len(names) == 1 or _joined(asked)):
            if any(m.negated for m in asked):
                continue
            for name in names:
                facts.append(SymptomFact(name, "reported", (turn.n, answer.n), None, uncertain))
                if uncertain is None:
                    polarity.setdefault(answer.n, {}).setdefault(name, set()).add("reported")
    return facts, polarity


def _contradicted(m: _Mention, status: Status, reply: Turn | None, docs: dict[int, Any]) -> bool:
    """Whether the patient's reply says the opposite of what the clinician said of them ("you've been able
    to tolerate the nausea" "i have n't had any nausea"): the patient's words stand."""
    if reply is None or reply.speaker != "patient":
        return False
    said = {(r.name, r.negated) for r in _mentions(docs[reply.n]) if not r.question}
    return (m.name, status == "reported") in said


def _answers_later_question(doc: Any, asked: list[_Mention]) -> bool:
    """Whether the turn's last question asks about none of the symptoms asked before it but about "it", so
    that the answer is its ("what might have caused the chest pain? did you wake up with it?" "no.")."""
    questions = [sent for sent in doc.sents if _is_question(sent.text)]
    if not questions:
        return False
    last = questions[-1]
    words = _words(last.text)
    of_it = bool(set(words) & {"it", "that", "this"}) and not _cued(" ".join(words), FOLLOW_UPS)
    return of_it and all(m.sentence_start != last.start_char for m in asked)


def _manoeuvre(m: _Mention) -> bool:
    """Whether a pain is asked about as the clinician examines ("does it hurt when i press")."""
    return (m.name == "pain" or m.name.endswith(" pain")) and _cued(
        " ".join(_words(m.sentence)), MANOEUVRE_CUES
    )


def _where_it_hurts(question: Turn, mentions: list[_Mention], answer: Turn, answer_doc: Any) -> str | None:
    """The pain a patient locates when the clinician asks where it hurts ("where are you hurting?" "right
    in the groin area." → groin pain), unless the answer names that pain itself or denies."""
    if question.speaker not in CLINICIANS or answer.speaker != "patient":
        return None
    if not any(m.question and m.name == "pain" and "where" in _words(m.sentence) for m in mentions):
        return None
    located = _one_part(answer.text)
    own = _mentions(answer_doc)
    if located is None or any(m.negated or m.name == located for m in own):
        return None
    return located


def _owned(doc: Any, ent: Any) -> bool:
    """Whether the clinician says the patient's drug ("your metformin", "her lisinopril")."""
    return ent.start > 0 and doc[ent.start - 1].lower_ in ("your", "his", "her")


def _near(doc: Any, start: int, words: Iterable[str], window: int = 10) -> str | None:
    """The first of `words` (phrases) said within `window` tokens after token `start`."""
    tail = " ".join(t.lower_ for t in doc[start : start + window])
    found = [(tail.find(w), w) for w in words if re.search(rf"(^| ){re.escape(w)}( |$)", tail)]
    return min(found)[1] if found else None


RUN_ON_WORDS = 40  # a "sentence" longer than this is speech recognition's run-on turn, cut at exam cues
# Where a system's exam opens: "on your heart exam", "on the examination of", "listen to your lungs".
SYSTEM_EXAM = r"\bon (?:your|the|my) (?:\w+ )?exam(?:ination)?\b|\bon (?:your|the) examination of\b"
LOOKED_AT = r"\b(?:listen(?:ing)? to|look(?:ing)? at|examin(?:e|ing)) (?:your|the) \w+"
EXAM_PART = re.compile(rf"(?={SYSTEM_EXAM}|{LOOKED_AT})", re.IGNORECASE)
OPENS_LOOKING = re.compile(rf"^{LOOKED_AT}", re.IGNORECASE)
OPENS_SYSTEM = re.compile(rf"^(?:{SYSTEM_EXAM})", re.IGNORECASE)
SYSTEM_NAMES = frozenset({"heart", "lungs", "abdomen"})
# A question put during the exam ("when i move your left knee do you get any pain") ends the finding.
ASKS_DURING_EXAM = re.compile(
    r"\b(?:(?:when|if) i (?:move|press|push|bend|touch|squeeze|turn|lift)|do you|does it|does that|can you"
    r"|are you|is it)\b.*$",
    re.IGNORECASE,
)
MOVES_ON = re.compile(
    r"\b(?:so that means|which means|that means|so i|okay|alright|all right|now we|since we"
    r"|let me|lem me|let's|i'm gon na|(?:your|my|the) (?:diagnosis|assessment|impression))\b",
    re.IGNORECASE,
)
STUDY_BEFORE = 4  # words before a study's name quoted with what it found ("we did do an x-ray ...")
STUDY_FROM_START = 10  # a study named within this many words is quoted from its sentence's start
MAX_STUDIES = 4
# What a study read out found: "shows", "came back normal", "no fractures", "i don't see any evidence of".
STUDY_RESULTS = re.compile(
    r"\b(?:shows?|showed|shown|reveals?|revealed|demonstrates?|demonstrated|came back|looks|looked|normal"
    r"|no evidence|no fractures?|n't see|not see|there is no|there's no|unremarkable)\b"
)
OPENER_WORDS = 4  # "listen to your lungs", "on your heart exam": the talk moves on only after these
DANGLING = frozenset({"no", "not", "any", "without", "a", "the", "of", "your"})
DANGLING_MORE = 4  # words a finding cut at RUN_ON_WORDS may run on to finish what "no" began
LAB_WORDS = frozenset({"level", "levels", "phosphatase", "count", "panel", "test", "tests"})
ALLERGY_WINDOW = 8  # tokens either side of "allergic" quoted and read
ALLERGY_TO = re.compile(r"\ballerg\w*(?: reaction)? to\b")
NO_ALLERGY = re.compile(r"\b(?:no|not|any|n't)(?: known)?(?: drug| medication| food)? allerg")
EVERY_HOURS = re.compile(r"\bevery (\S+)(?: to (\S+))? hours?\b")


def _frequency(doc: Any, start: int) -> str | None:
    """How often, as said after a drug name: a listed phrase, or "every 4 to 6 hours" (as needed); not past
    the next instruction ("the metformin i do want you to check your blood sugars daily")."""
    words = [t.lower_ for t in doc[start : start + FREQUENCY_WINDOW]]
    joined = [" ".join(words[i:]) for i in range(len(words))]
    window = next(
        (
            i
            for i, rest in enumerate(joined)
            if any(rest.startswith(f"{c} ") and not rest.startswith(f"{c} take") for c in INSTRUCTION_CUES)
        ),
        len(words),
    )  # "i want you to take that daily" still says how often
    phrase = _near(doc, start, FREQUENCIES, window=window)
    tail = " ".join(words[:window])
    interval = EVERY_HOURS.search(tail)
    if interval is None:
        return phrase
    low, high = spoken_number(interval[1]), spoken_number(interval[2]) if interval[2] else None
    if low is None or (interval[2] and high is None):
        return phrase
    every = f"every {_shown(low)}" + (f" to {_shown(high)}" if high is not None else "") + " hours"
    return f"{every} {phrase}" if phrase in ("as needed", "when needed") else every


def _dose(doc: Any, start: int) -> str | None:
    """A dose said within a few tokens after a drug name ("20 milligrams" → "20 mg")."""
    tokens = list(doc[start : start + DOSE_WINDOW])
    for i, token in enumerate(tokens[:-1]):
        value = spoken_number(token.text)
        if value is None:
            continue
        scale = {"hundred": 100, "thousand": 1000}.get(tokens[i + 1].lower_)
        if scale and i + 2 < len(tokens):
            value, tokens = value * scale, tokens[: i + 1] + tokens[i + 2 :]  # "eight hundred milligrams"
        fraction = spoken_number(tokens[i + 2].text) if i + 2 < len(tokens) else None
        if tokens[i + 1].lower_ in ("point", ".") and fraction is not None and fraction < 10:
            # "zero point four"; speech recognition writes "twelve . five milligrams" for 12.5 mg
            value, tokens = value + fraction / 10, tokens[: i + 1] + tokens[i + 3 :]
        nxt = tokens[i + 1].lower_
        if value >= 20 and i + 2 < len(tokens) and tokens[i + 2].lower_ in DOSE_UNITS:
            second = spoken_number(tokens[i + 1].text)
            if second is not None and 0 < second < 10 and token.is_alpha:
                return f"{_shown(value + second)} {DOSE_UNITS[tokens[i + 2].lower_]}"
        if nxt in DOSE_UNITS:
            return f"{_shown(value)} {DOSE_UNITS[nxt]}"
    return None


def _dose_before(doc: Any, start: int) -> str | None:
    """A dose said just before a drug name ("twenty milligrams of lisinopril")."""
    if start >= 3 and doc[start - 1].lower_ == "of":
        return _dose(doc, max(0, start - 4)) if doc[start - 2].lower_ in DOSE_UNITS else None
    return None


def _previous_drug(doc: Any, ent: Any) -> int:
    """Where the drug named before this one ends (or the start)."""
    return max((e.end for e in doc.ents if e.label_ == "DRUG" and e.end <= ent.start), default=0)


def _next_drug(doc: Any, ent: Any) -> int:
    """Where the next drug is named after this one (or the end): a dose said after it is the next one's."""
    return min((e.start for e in doc.ents if e.label_ == "DRUG" and e.start >= ent.end), default=len(doc))


def read_medications(transcript: Transcript, docs: dict[int, Any]) -> list[MedicationFact]:
    """Medications named in the visit with dose and frequency as said; a clinician's prescribing or change
    is a plan, a stop is a stop."""
    found: dict[tuple[str, str], MedicationFact] = {}
    for turn in transcript.turns:
        doc = docs[turn.n]
        for ent in doc.ents:
            if ent.label_ != "DRUG" or ent._.is_family:
                continue
            name = ent.text.lower()
            name = name[:-1] if name.endswith("s") and name[:-1] in KNOWN_DRUGS else name  # "antibiotics"
            # Cues near the drug only, and none across another drug ("stop the norvasc and we'll put you on
            # hydrochlorothiazide"): speech recognition runs a whole turn into one "sentence".
            start = max(ent.sent.start, ent.start - CUE_WINDOW_BEFORE, _previous_drug(doc, ent))
            window = doc[start : min(ent.end + CUE_WINDOW, _next_drug(doc, ent))]
            near = f" {window.text.lower()} "
            clinician = turn.speaker in CLINICIANS
            patient = turn.speaker == "patient"  # an untagged speaker's drug is taken only when said so
            prescribed = not patient and any(f" {c} " in near for c in PLAN_CUES)
            if ent._.is_hypothetical and not prescribed:
                continue  # a prescribing next to the drug is a plan, whatever "if" came earlier in the turn
            if _not_a_drug_here(doc, ent):
                continue  # "your potassium is 3.9", "alkaline phosphatase", "allergic to percocet"
            stop = any(f" {c} " in near for c in STOP_CUES) or (patient and _stopped_later(doc, ent))
            if stop and any(f" {c} " in near for c in HOPED_CUES):
                continue  # a stop hoped for is no stop, and says nothing of what is taken now
            if stop and clinician and any(f" {c} " in near for c in INSTRUCTION_CUES):
                status: MedStatus = "stopping"  # "i want you to stop taking the advil": a plan to stop
            elif stop or any(f" {c} " in near for c in PAST_USE_CUES) or _before_now(near):
                status = "stopped"
            elif prescribed:
                # "continue with the lisinopril 20 mg a day" goes on with what is taken; said just before the
                # drug ("continue to monitor that ... you will tolerate the aldactone" starts the aldactone).
                said_before = f" {doc[max(start, ent.start - CONTINUE_WINDOW) : ent.start].text.lower()} "
                status = "continuing" if any(f" {c} " in said_before for c in CONTINUE_CUES) else "planned"
            elif clinician and _owned(doc, ent):
                status = "taking"  # "your metformin", asked about or not
            elif _negated(ent, CUE_WINDOW_BEFORE) or _is_question(ent.sent.text):
                continue  # "did not want any steroid", "did she give you some prednisone?": not taken
            elif patient or any(f" {c} " in near for c in TAKING_CUES):
                status = "taking"
            else:
                status = "named"  # a clinician naming a drug without saying it is taken or planned
            own = doc[: _next_drug(doc, ent)]  # what is said after the next drug's name is about that drug
            dose = _dose_before(doc, ent.start) or _dose(own, ent.end)
            frequency = _frequency(own, ent.end)
            key = (name, status)
            before = found.get(key)
            if before is None:
                found[key] = MedicationFact(name, status, (turn.n,), dose, frequency)
            elif (dose and not before.dose) or (frequency and not before.frequency):
                turns = tuple(dict.fromkeys((*before.turns, turn.n)))[:3]
                found[key] = MedicationFact(
                    name, status, turns, before.dose or dose, before.frequency or frequency
                )
    # A drug the visit says elsewhere is taken, planned or stopped is not also "named, status unknown"; a
    # drug continued is not also started. Their dose and frequency go to it when it has none.
    facts = list(found.values())
    facts = _folded(facts, "named", lambda f: f.status != "named")
    return _folded(facts, "planned", lambda f: f.status == "continuing", keep_turns=True)


def _folded(
    facts: list[MedicationFact], status: str, into: Callable[[MedicationFact], bool], keep_turns: bool = False
) -> list[MedicationFact]:
    """The facts with each of `status` folded into the same drug's facts that `into` picks, if any: its dose
    and frequency fill theirs (and, with `keep_turns`, its turns join theirs)."""
    out = [f for f in facts if f.status != status]
    for folded in (f for f in facts if f.status == status):
        # An increase is no continuation: a dose said both ways keeps both.
        same = [
            i
            for i, f in enumerate(out)
            if f.name == folded.name and into(f) and not (keep_turns and f.dose and folded.dose != f.dose)
        ]
        if not same:
            out.append(folded)
        for i in same:
            f = out[i]
            if keep_turns or (folded.dose and not f.dose) or (folded.frequency and not f.frequency):
                turns = tuple(dict.fromkeys((*f.turns, *folded.turns)))[:3]
                out[i] = MedicationFact(
                    f.name, f.status, turns, f.dose or folded.dose, f.frequency or folded.frequency
                )
    return out


def _stopped_later(doc: Any, ent: Any) -> bool:
    """Whether the patient says later in the sentence, before naming another drug, that they stopped it ("i
    tried tylenol a few times for the headaches but it did n't work , so i stopped")."""
    later = doc[ent.end : min(ent.sent.end, _next_drug(doc, ent))].text.lower()
    return re.search(r"\bi (?:stopped|quit)\b", later) is not None


def _before_now(near: str) -> bool:
    """ "i was on lisinopril before": taken in the past."""
    return (" was on " in near or " were on " in near) and " before " in near


def _not_a_drug_here(doc: Any, ent: Any) -> bool:
    """A drug word used as a lab ("potassium is 3.9", "magnesium level", "alkaline phosphatase") or named
    as an allergy ("allergic to percocet")."""
    after = [t.lower_ for t in doc[ent.end : ent.end + 4]] + ["", "", "", ""]
    before = " ".join(t.lower_ for t in doc[max(0, ent.start - 4) : ent.start])
    valued = after[0] in ("is", "was") and spoken_number(after[1]) is not None  # "potassium is 3.9"
    lab = after[0] in LAB_WORDS or (valued and after[2] not in DOSE_UNITS and after[3] not in DOSE_UNITS)
    return lab or bool(ALLERGY_TO.search(before)) or "allerg" in before


def read_measurements(
    transcript: Transcript, docs: dict[int, Any], speakers: Iterable[str] = CLINICIANS
) -> list[SaidFact]:
    """Measurements said aloud with a number in the same sentence, by the clinician (or `speakers`: the
    patient's own readings, "my a1c is six point seven")."""
    found: dict[tuple[str, int], SaidFact] = {}
    for turn in transcript.turns:
        if turn.speaker not in speakers:
            continue
        doc = docs[turn.n]
        for ent in doc.ents:
            if ent.label_ != "MEASURE" or _is_question(ent.sent.text):
                continue
            # What is said after the next drug or measurement is about that one; a blood pressure's "N over
            # M" may come long after its name ("your blood pressure is a little elevated but ... we are
            # looking at like a hundred and forty over seventy").
            window = (
                PRESSURE_WINDOW
                if _name(ent) == "blood pressure" and _over_ahead(doc, ent)
                else READING_WINDOW
            )
            end = min(
                [ent.sent.end, ent.end + window]
                + [e.start for e in doc.ents if e.start >= ent.end and e.label_ in ("DRUG", "MEASURE")]
            )
            # "a1c in three months" schedules a test, "five hundred milligrams" is a dose: no readings.
            # "one plus edema" grades the edema.
            readings = [
                t
                for t in doc[ent.end : end]
                if spoken_number(t.text) is not None
                and (t.i + 1 >= len(doc) or doc[t.i + 1].lower_ not in (*TIME_UNITS, *DOSE_UNITS, "plus"))
            ]
            between = [t.lower_ for t in doc[ent.end : readings[0].i]] if readings else []
            # "call me if you gain three pounds", "a1c below seven": a threshold or a target; "blood pressure
            # cuff at home did you end up getting one": a question.
            if not readings or NOT_A_READING & set(between) or _cued(" ".join(between), SECOND_PERSON_ASKS):
                continue
            own = turn.speaker == "patient"
            if own and not _own_reading(doc, ent, readings[0]):
                continue
            # A patient's reading is the one number run said right after its name; the clinician's, all said.
            last = _reading_end(doc, (readings[0] if own else readings[-1]).i + 1)
            last += last < len(doc) and doc[last].lower_ in READING_UNITS  # "180 pounds"
            said = _clean(doc[ent.start : last].text)
            name = _name(ent)
            found.setdefault((name, turn.n), SaidFact(name, said, (turn.n,)))  # today's and the ER's pressure
    return list(found.values())[:MAX_READINGS]


def _own_reading(doc: Any, ent: Any, first: Any) -> bool:
    """Whether a patient-tagged sentence gives their own reading: the number follows its name closely, just
    after a verb or "at about" ("my a1c is six point seven", "running a little higher at about one thirty"),
    not "at one point" or "goes over two hundred", in words of "my", not "your"."""
    if {t.lower_ for t in ent.sent} & {"you", "your", "you're"}:
        return False  # the clinician's words under the patient's tag
    lead = {t.lower_ for t in doc[max(ent.end, first.i - OWN_LEAD) : first.i]}
    pointed = first.i + 1 < len(doc) and doc[first.i + 1].lower_ == "point"
    said_point = _reading_end(doc, first.i + 1) > first.i + 2
    return (
        first.i - ent.end <= OWN_GAP
        and bool(lead & READING_LEADS)
        and "over" not in lead
        and (not pointed or said_point)
    )


def _over_ahead(doc: Any, ent: Any) -> bool:
    """Whether "N over M" is said after a measurement's name, past the usual window, before the next one."""
    ahead = doc[ent.end : min(ent.sent.end, ent.end + PRESSURE_WINDOW)]
    stop = next(
        (e.start for e in doc.ents if e.start >= ent.end and e.label_ in ("DRUG", "MEASURE")), len(doc)
    )
    return any(
        t.lower_ == "over"
        and t.i < stop
        and spoken_number(doc[t.i - 1].text) is not None
        and _reading_end(doc, t.i) > t.i + 1
        for t in ahead
    )


def _reading_end(doc: Any, i: int) -> int:
    """Where a spoken reading that goes on at token i ends: past numbers, "over", and a decimal point said
    or written ("one twenty eight over seventy two", "ninety eight . two", "in the one twenties")."""
    while i < len(doc):
        word, after = doc[i].lower_, (doc[i + 1].text if i + 1 < len(doc) else "")
        if spoken_number(word) is not None or DECADES.fullmatch(word):
            i += 1
        elif word in ("over", "point") and spoken_number(after) is not None:
            i += 2
        elif word == "over" and after.lower() == "over":
            i += 1  # speech recognition's "one forty over over seventy"
        elif word == "." and (digit := spoken_number(after)) is not None and digit < 10:
            i += 2  # speech recognition writes "ninety eight . two" for 98.2
        else:
            break
    return i


def read_allergies(transcript: Transcript, docs: dict[int, Any]) -> list[SaidFact]:
    """Allergies mentioned (or their absence), as said."""
    found = []
    for turn in transcript.turns:
        if turn.speaker == "unknown":
            continue
        doc = docs[turn.n]
        for token in doc:
            if not token.lower_.startswith("allerg") or _is_question(token.sent.text):
                continue
            # The words around it, not the whole run-on turn; and only a reaction to something (a drug named
            # near it, "allergic to ...") or its absence: "seasonal allergies" and "an allergic reaction in
            # your lungs" are no drug or food allergy.
            window = doc[max(token.sent.start, token.i - ALLERGY_WINDOW) : token.i + ALLERGY_WINDOW + 1]
            said = " ".join(_words(window.text))
            drug = any(e.label_ == "DRUG" and window.start <= e.start < window.end for e in doc.ents)
            if drug or ALLERGY_TO.search(said) or NO_ALLERGY.search(said):
                found.append(SaidFact("allergy", TRAILING_JOIN.sub("", _clean(window.text)), (turn.n,)))
    return found[:4]


def read_findings(transcript: Transcript, docs: dict[int, Any], examined: set[int]) -> list[SaidFact]:
    """The clinician's examination findings: their sentences naming a finding, between the cue that starts
    the examination and the one that ends it."""
    found = []
    for n in sorted(examined):
        for sent in docs[n].sents:
            for part in _exam_parts(sent.text):
                words = " ".join(_words(part))
                if _is_question(part) or any(cue in f" {words} " for cue in INTENT_CUES):
                    continue
                study = any(re.search(rf"\b{re.escape(w)}\b", words) for w in STUDY_WORDS)
                # "on your heart exam.", "listen to your heart and lungs": name the systems, find nothing.
                looked = OPENS_LOOKING.sub("", words)
                names = SYSTEM_NAMES if looked != words else frozenset()
                found_words = OPENS_SYSTEM.sub("", looked)
                finding = any(re.search(rf"\b{w}\b", found_words) for w in FINDING_WORDS if w not in names)
                if not (finding or (study and RESULT_VERBS.search(words))):
                    continue
                # "on the x-ray and your exam, you have some tenderness": the exam's finding, a study named.
                read_out = study and not re.search(r"\bexam(?:ination)?\b", words)
                found.append(SaidFact("study" if read_out else "finding", _clean(part), (n,)))
    return found[:12]


def read_studies(transcript: Transcript, docs: dict[int, Any], examined: set[int]) -> list[SaidFact]:
    """Studies the clinician reads out outside the examination ("we did do an x-ray of that right knee and
    luckily you did n't break anything so there is no fractures"): from shortly before the study's name up
    to where the talk moves on, when it says what the study found."""
    found = []
    for turn in transcript.turns:
        if turn.speaker not in CLINICIANS or turn.n in examined:
            continue
        for sent in docs[turn.n].sents:
            tokens = sent.text.split()
            plain = [re.sub(r"[^a-z0-9\-]", "", t.lower()) for t in tokens]
            at = next((i for i, w in enumerate(plain) if w in STUDY_WORDS), None)
            if at is None:
                continue
            start = 0 if at <= STUDY_FROM_START else at - STUDY_BEFORE  # the sentence, or its tail
            while start < at and tokens[start].lower().startswith(("n't", "'")):
                start += 1  # not from inside "do n't"
            part = _finding_part(" ".join(tokens[start:]))
            words = f" {' '.join(_words(part))} "
            # "show me the x-ray" commands; "assuming that the ultrasound is normal" supposes.
            supposed = any(cue in words for cue in (*INTENT_CUES, " assuming ", " hopefully ", " show me "))
            if _is_question(part) or supposed or not STUDY_RESULTS.search(words):
                continue
            found.append(SaidFact("study", _clean(part), (turn.n,)))
    return found[:MAX_STUDIES]


def read_reason(transcript: Transcript, docs: dict[int, Any]) -> list[SaidFact]:
    """Why the patient came, as first said in the opening turns ("keith is a 58-year-old male here for
    evaluation of high blood sugar"); a question ("some problems with your right hip?") once the patient's
    next turn says yes, quoted with it."""
    for turn in transcript.turns[:REASON_TURNS]:
        if turn.speaker not in (*CLINICIANS, "patient"):
            continue
        for sent in docs[turn.n].sents:
            words = " ".join(_words(sent.text))
            if not _cued(words, VISIT_REASON_CUES):
                continue
            said = TRAILING_JOIN.sub("", _clean(_around_cue(sent.text, VISIT_REASON_CUES)))
            if not _is_question(sent.text) and not _cued(words, ("any",)):
                return [SaidFact("reason", f'"{said}"', (turn.n,))]
            answer = transcript.turn(turn.n + 1)
            if (
                answer is not None
                and answer.speaker == "patient"
                and _answer_polarity(answer.text) == "affirmative"
            ):
                return [SaidFact("reason", f'"{said}" "{_clean(answer.text)}"', (turn.n, answer.n))]
    return []


OUT_OF_TEN = re.compile(r"\b(\S+) out of (?:ten|10)\b")
SCALE_ASKED = re.compile(
    r"\b(?:scale of (?:one|zero|0|1) (?:to|through) (?:ten|10)|out of (?:ten|10)|pain (?:score|level))\b"
)
SEVERITY_WORDS = 20  # words of an answer read for its score, and quoted
MAX_SCORE = 11  # "eleven out of ten" is said
QUOTED_BEFORE, QUOTED_AFTER, QUOTED_ASKED, MAX_QUOTED = 6, 6, 12, 30  # words quoted around a score
SCORE_AFTER = 12  # words after a patient's last score quoted with it ("... and goes down to like a one")


def _score(words: list[str]) -> bool:
    return any((n := spoken_number(w)) is not None and n <= MAX_SCORE for w in words)


def _said_after_score(text: str) -> list[str]:
    """The words after the last "N out of ten" up to the end of its sentence, at most SCORE_AFTER."""
    sentences = [" ".join(_words(part, numbers=True)) for part in re.split(r"[.?!]", text)]
    last = next((m for part in reversed(sentences) for m in reversed(list(OUT_OF_TEN.finditer(part)))), None)
    return last.string[last.end() :].split()[:SCORE_AFTER] if last else []


def read_severity(transcript: Transcript) -> list[SaidFact]:
    """How severe the patient says the pain is: "it's like a four out of ten" in their words, or their answer
    to a clinician's "on a scale of one to ten how severe is your pain" or "nine out of 10?", quoted."""
    found: list[SaidFact] = []
    for turn in transcript.turns:
        said = " ".join(_words(turn.text, numbers=True))
        answer = transcript.turn(turn.n + 1)
        scores = [m for m in OUT_OF_TEN.finditer(said) if _score([m[1]])]
        if turn.speaker == "patient" and scores:
            # From shortly before the first score to the last: "at first it was like three out of 10 ... and
            # now it's about six out of 10".
            before = said[: scores[0].start()].split()[-QUOTED_BEFORE:]
            after = _said_after_score(turn.text)  # "... is with ibuprofen"
            words = [*before, *said[scores[0].start() : scores[-1].end()].split(), *after][:MAX_QUOTED]
            found.append(SaidFact("severity", f'"{" ".join(words)}"', (turn.n,)))
        elif (
            turn.speaker in CLINICIANS
            and (cue := SCALE_ASKED.search(said))
            and answer
            and answer.speaker == "patient"
        ):
            replied = _words(answer.text, numbers=True)
            reply = replied[:SEVERITY_WORDS]
            # "nine out of 10?" "yeah." confirms the clinician's score; a reply giving its own is read above.
            confirms = bool(OUT_OF_TEN.search(said)) and _answer_polarity(answer.text) == "affirmative"
            if confirms or (_score(reply) and not OUT_OF_TEN.search(" ".join(replied))):
                end = cue.end()
                asked = " ".join([*said[:end].split()[-QUOTED_ASKED:], *said[end:].split()[:QUOTED_AFTER]])
                found.append(SaidFact("severity", f'"{asked}" "{" ".join(reply)}"', (turn.n, answer.n)))
    return found[:MAX_READINGS]


def _around_cue(sentence: str, cues: Iterable[str]) -> str:
    """REASON_WORDS words of a (run-on) sentence: its opening, or where its first cue falls late, from
    REASON_BEFORE words before the cue."""
    tokens = sentence.split()
    plain = [re.sub(r"[^a-z0-9'\-]", "", t.lower()) for t in tokens]
    starts = [i for i in range(len(plain)) for c in cues if plain[i : i + len(c.split())] == c.split()]
    at = min(starts, default=0)
    start = 0 if at + REASON_AFTER <= REASON_WORDS else at - REASON_BEFORE
    return " ".join(tokens[start : start + REASON_WORDS])


def _exam_parts(sentence: str) -> list[str]:
    """A sentence; or of an unpunctuated exam turn, the parts that open with a system's exam ("... let's do
    a quick exam so on your heart exam i appreciate a murmur on your lung exam your lungs are clear"), each
    up to where the talk moves on ("so that means ...") and at most RUN_ON_WORDS words."""
    if len(sentence.split()) <= RUN_ON_WORDS:
        return [sentence]
    return [_finding_part(p) for p in EXAM_PART.split(sentence) if EXAM_PART.match(p)]


def _finding_part(part: str) -> str:
    """A system's part of a run-on exam turn, cut where the talk moves on after its opening words ("listen
    to your lungs okay your lungs are clear" keeps its "okay"), before a question put during the exam, and
    at RUN_ON_WORDS words, or a few more where the cut would end on "no" ("i appreciate no edema")."""
    words = part.split()
    head, rest = words[:OPENER_WORDS], " ".join(words[OPENER_WORDS:])
    moves = next((m.start() for m in MOVES_ON.finditer(rest) if m.start() > 0), len(rest))
    said = ASKS_DURING_EXAM.sub("", " ".join([*head, rest[:moves]])).split()
    cut = said[:RUN_ON_WORDS]
    while len(cut) < min(len(said), RUN_ON_WORDS + DANGLING_MORE) and cut[-1] in DANGLING:
        cut.append(said[len(cut)])
    return TRAILING_JOIN.sub("", " ".join(cut))


def _clean(text: str) -> str:
    """A sentence as said, without hesitation sounds and with its spacing tidied."""
    text = FILLERS.sub("", text)
    text = re.sub(r"\s+([,.?!;:])", r"\1", text)
    return " ".join(text.split()).strip(" ,")


def facts_of(transcript: Transcript) -> TranscriptFacts:
    """Everything composed from a transcript (from an untagged one, nothing: who spoke is unknown)."""
    nlp = pipeline()
    docs = {
        t.n: doc for t, doc in zip(transcript.turns, nlp.pipe(t.text for t in transcript.turns), strict=True)
    }
    examined = exam_turns(transcript)  # what the clinician finds is a finding, not a report
    symptoms, polarity = read_symptoms(transcript, docs, examined)
    facts = TranscriptFacts(symptoms=symptoms, polarity=polarity)
    if transcript.tagged:
        facts.medications = read_medications(transcript, docs)
        facts.measurements = read_measurements(transcript, docs)
        facts.own_readings = read_measurements(transcript, docs, ("patient",))
        facts.allergies = read_allergies(transcript, docs)
        facts.findings = read_findings(transcript, docs, examined) + read_studies(transcript, docs, examined)
        facts.reason = read_reason(transcript, docs)
        facts.severity = read_severity(transcript)
    return facts


def statement_polarity(text: str) -> dict[str, Status]:
    """The symptoms a statement asserts or denies (uncertain and hypothetical mentions left out)."""
    out: dict[str, Status] = {}
    closed = text if text.rstrip()[-1:] in ".!?;," else text.rstrip() + "."  # "Fever: no" ends its answer
    for m in _mentions(pipeline()(closed)):
        if not m.question:
            out.setdefault(m.name, "denied" if m.negated else "reported")
    return out
