"""The words of a draft in each output language: the prompt's language rule, titles, the rendered frame, the
verifier's hedging lexicon, and how dates and decimals are written (normalized for checking).

The structured draft keeps the English section titles as its keys; only what a clinician reads is localized.
Statements composed from the record keep the record's own words (names, values, units) with this language's
connecting words (clinical_notes.record_phrases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clinical_notes.record_phrases import ENGLISH_PHRASES, FRENCH_PHRASES, RecordPhrases

MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_MONTH_FR = "|".join(MONTHS_FR)
# "12/03/2024", "12 mars 2024", "1er mars 2024", "mars 2024": rewritten as ISO for the date check.
_FR_NUMERIC_DATE = re.compile(r"\b(?P<d>0?[1-9]|[12]\d|3[01])/(?P<m>0?[1-9]|1[0-2])/(?P<y>(?:19|20)\d{2})\b")
_FR_LONG_DATE = re.compile(
    rf"\b(?:(?P<d>0?[1-9]|[12]\d|3[01])(?:er)?\s+)?(?P<m>{_MONTH_FR})\s+(?P<y>(?:19|20)\d{{2}})\b",
    re.IGNORECASE,
)
_DECIMAL_COMMA = re.compile(r"(?<![\d,])(\d+),(\d+)(?![\d,])")


@dataclass(frozen=True)
class Wording:
    """Everything of a draft that depends on its language."""

    code: str
    prompt_rule: str  # appended to the system text
    kind_titles: dict[str, str]
    section_titles: dict[str, str]
    banner: str
    flags: str
    sources: str
    model_mark: str
    unavailable: str  # "{reason}"
    verification: str  # "{checked}", "{removed}"
    removed_none: str
    removed_some: str  # "{n}"
    severities: dict[str, str]
    authors: dict[str, str]
    not_in_timeline: str
    phrases: RecordPhrases  # the connecting words of statements composed from the record
    hedged: re.Pattern[str]
    definitive: re.Pattern[str]
    about_the_record: tuple[re.Pattern[str], ...] = field(default=())

    def title(self, kind: str, default: str) -> str:
        """The kind's note title."""
        return self.kind_titles.get(kind, default)

    def section(self, title: str) -> str:
        """A section title as the clinician reads it."""
        return self.section_titles.get(title, title)

    def day(self, iso: str) -> str:
        """An ISO date (or date-time) as this language writes it."""
        if self.code == "fr" and len(iso) >= 10:
            return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"
        return iso[:10]

    def decimal(self, number: str) -> str:
        """A number as this language writes it (7.5 → 7,5 in French)."""
        return number.replace(".", ",") if self.code == "fr" else number

    def for_checking(self, text: str) -> str:
        """The text with this language's dates, decimal commas and sex words as the verifier reads them."""
        if self.code != "fr":
            return text

        def long_date(m: re.Match[str]) -> str:
            month = MONTHS_FR.index(m["m"].lower()) + 1
            return f"{m['y']}-{month:02d}" + (f"-{int(m['d']):02d}" if m["d"] else "")

        text = _FR_NUMERIC_DATE.sub(lambda m: f"{m['y']}-{int(m['m']):02d}-{int(m['d']):02d}", text)
        text = _FR_LONG_DATE.sub(long_date, text)
        text = _DECIMAL_COMMA.sub(r"\1.\2", text)
        # "Femme" names the record's gender code "female": read as the code it stands for, so that the
        # composed patient statement mentions what the Patient resource records.
        for code, said in self.phrases.sexes.items():
            text = re.sub(rf"(?<!\w){re.escape(said)}(?!\w)", code, text, flags=re.IGNORECASE)
        return text


ENGLISH = Wording(
    code="en",
    prompt_rule="",
    kind_titles={},
    section_titles={},
    banner=(
        "> **AI-generated draft, not reviewed.** Not a medical device: a clinician must review, edit and "
        "approve it before use. Statements marked _(model)_ were written by a language model and checked "
        "against the record; all others were composed from the record. Every statement cites its sources."
    ),
    flags="Flags",
    sources="Sources",
    model_mark="_(model)_",
    unavailable="_Model synthesis unavailable: {reason}. The facts below are from the record._",
    verification=(
        "_Verification: every statement here was checked against the record ({checked}); {removed}._"
    ),
    removed_none="none removed",
    removed_some="{n} model statements were removed for failing a check",
    severities={},
    authors={},
    not_in_timeline="not in the timeline",
    phrases=ENGLISH_PHRASES,
    hedged=re.compile(
        r"\b(suggests?|suggestive|consistent with|compatible with|consider|possible|possibly|probable|"
        r"likely|may|might|could|suspect(ed)?|concern for|cannot be excluded|rule out|differential|"
        r"history of|known)\b",
        re.IGNORECASE,
    ),
    definitive=re.compile(
        r"\b(diagnosed with|diagnosis (is|of)|diagnostic of|confirms?|confirmed|definitely|certainly|"
        r"is suffering from|(has|have) (an? )?([a-z-]+ ){0,3}"
        r"[a-z-]*(itis|osis|emia|aemia|oma|pathy|pneumonia|sepsis|infection|failure|infarction|fracture|"
        r"cancer|carcinoma|disease|syndrome|disorder|embolism|stroke))\b",
        re.IGNORECASE,
    ),
)

FRENCH = Wording(
    code="fr",
    prompt_rule=(
        "- Write every statement, title and rationale in French (français). Keep the names of problems, "
        "drugs and tests, and every number and unit, exactly as the timeline writes them; write dates as "
        "DD/MM/YYYY and decimals with a comma (7,5). Hedge assessments in French: « évoque », « compatible "
        "avec », « à envisager »."
    ),
    kind_titles={
        "progress": "Synthèse d'évolution (brouillon IA)",
        "soap": "Note SOAP (brouillon IA)",
        "triage": "Alertes de tri (brouillon IA)",
    },
    section_titles={
        "Summary": "Résumé",
        "Interval changes": "Évolution depuis la dernière consultation",
        "Active problems": "Problèmes actifs",
        "Medications": "Traitements",
        "Allergies": "Allergies",
        "Recent results": "Résultats récents",
        "Recent care": "Soins récents",
        "Assessment": "Évaluation",
        "Plan considerations": "Éléments pour le plan",
        "Subjective": "Subjectif",
        "Objective": "Objectif",
        "Plan": "Plan",
        "Findings": "Constatations",
    },
    banner=(
        "> **Brouillon généré par IA, non relu.** Pas un dispositif médical : un clinicien doit le relire, "
        "le corriger et le valider avant tout usage. Les énoncés marqués _(modèle)_ ont été écrits par un "
        "modèle de langage et vérifiés contre le dossier ; tous les autres sont tirés du dossier. Chaque "
        "énoncé cite ses sources."
    ),
    flags="Alertes",
    sources="Sources",
    model_mark="_(modèle)_",
    unavailable="_Synthèse du modèle indisponible : {reason}. Les faits ci-dessous viennent du dossier._",
    verification=(
        "_Vérification : chaque énoncé ci-dessus a été contrôlé contre le dossier ({checked}) ; {removed}._"
    ),
    removed_none="aucun retiré",
    removed_some="{n} énoncés du modèle ont été retirés car un contrôle a échoué",
    severities={"critical": "CRITIQUE", "warning": "AVERTISSEMENT", "info": "INFO"},
    authors={"rule": "règle", "model": "modèle"},
    not_in_timeline="absent de la chronologie",
    phrases=FRENCH_PHRASES,
    hedged=re.compile(
        r"(?<!\w)(évoqu\w*|suggèr\w*|suggestif|suggestive|compatible avec|en faveur d['e]|à envisager|"
        r"envisager|possible(ment)?|probable(ment)?|peut-être|pourrai(en)?t|suspicion|suspect\w*|à éliminer|"
        r"ne peut être exclu\w*|diagnostic différentiel|antécédents? de|connu\w*)(?!\w)",
        re.IGNORECASE,
    ),
    definitive=re.compile(
        r"(?<!\w)(diagnostiqu\w*|diagnostic (est|de)|confirm\w*|certainement|définitivement|"
        r"atteinte? d['e]|souffre d['e]|(a|présente) (une? )?([\w-]+ ){0,3}"
        r"[\w-]*(ite|ose|émie|ome|pathie|pneumonie|sepsis|infection|insuffisance|infarctus|fracture|"
        r"cancer|carcinome|maladie|syndrome|embolie|AVC))(?!\w)",
        re.IGNORECASE,
    ),
    about_the_record=(
        re.compile(
            r"^aucun\w* [^.]*\b(trouvé|enregistré|documenté)\w*[^.]*\bdans le dossier\.?$", re.IGNORECASE
        ),
        re.compile(r"\bfigurent dans le dossier,? non listé\w*\.?$", re.IGNORECASE),
    ),
)

WORDINGS = {w.code: w for w in (ENGLISH, FRENCH)}


def wording(language: str) -> Wording:
    """The wording of a language code (ValueError for one without)."""
    try:
        return WORDINGS[language]
    except KeyError:
        raise ValueError(f"no wording for language {language!r} (known: {', '.join(WORDINGS)})") from None
