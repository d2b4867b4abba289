"""The fixed words of statements composed from the record, one table per language.

Only the connecting words are here; the record's own words (displays, drug names, units, dosage text) are
written as the record has them. Templates name their slots ("{n}", "{day}"); the composing code fills them.
Every "nothing found" statement and every count of what is left out must stay a statement about the record
that the verifier accepts without a citation (Wording.about_the_record, verifier.ABOUT_THE_RECORD).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecordPhrases:
    """The connecting words of composed statements in one language."""

    date_unknown: str
    no_value: str
    directions: dict[str, str]  # high, low, abnormal
    range: str  # "{bounds}"
    default_range: str  # "{bounds}"
    between: str  # "{low}", "{high}"
    onset_unknown: str  # "{name}"
    onset: str  # "{name}", "{day}", "{age}"
    recent: str
    long_standing: str
    no_problems: str
    more_problems: str  # "{n}"
    medication: str  # "{name}", "{dosage}", "{day}"
    dosage_unknown: str
    no_medications: str
    more_medications: str  # "{n}"
    no_allergies: str
    record_states: str  # "{what}"
    reactions: str  # "{reactions}"
    reaction_unknown: str
    criticality: str  # "{criticality}"
    allergy: str  # "{name}", "{details}"
    inactive_allergies: str  # "{names}"
    result: str  # "{name}", "{value}", "{day}"
    changes: dict[str, str]  # up, down ("{amount}"), unchanged
    change: str  # "{change}", "{value}", "{day}"
    last_abnormal: str  # "{value}", "{day}"
    more_abnormal: str  # "{n}"
    rest_of_results: str  # "{n}"
    no_results: str
    blood_pressure: str  # "{value}"
    vital_signs: str  # "{day}", "{parts}"
    no_vitals: str
    settings: dict[str, str]  # encounter class code → setting
    encounter: str  # an encounter without a type
    reason: str  # "{reasons}"
    earlier: dict[str, str]  # encounters, procedures, notes, immunizations
    not_listed: str  # "{counts}"
    no_care: str
    no_encounters: str
    latest_encounter: str  # "{day}", "{type}", "{reasons}"
    latest_reasons: str  # "{reasons}"
    no_reason: str
    patient: str  # "{age}", "{sex}", "{deceased}"
    age: str  # "{n}"
    no_age: str
    sexes: dict[str, str]  # administrative gender code → word (unlisted codes as recorded)
    no_sex: str
    deceased: str
    no_triage_encounter: str
    screen: str  # "{setting}", "{day}", "{statement}"
    level_name: str  # "{scale}", "{level}", "{name}"
    level_met: str  # "{level}", "{reasons}"
    level_none: str  # "{scale}"
    level_graded: str  # "{none}", "{level}", "{reasons}"
    no_modifier: str
    esi_none: str
    level_consider: str  # "{level}", "{reasons}"
    supporting: str  # "{titles}"
    skipped: str  # "{titles}"
    no_recent_findings: str
    separator: str  # ": " between a name and what follows
    detail: str  # "; " between details


ENGLISH_PHRASES = RecordPhrases(
    date_unknown="date unknown",
    no_value="no value",
    directions={"high": "high", "low": "low", "abnormal": "abnormal"},
    range="range {bounds}",
    default_range="default adult range {bounds}",
    between="{low} to {high}",
    onset_unknown="{name}, onset not recorded",
    onset="{name}, onset {day} ({age})",
    recent="recent, under 3 months",
    long_standing="long-standing",
    no_problems="No active problems found in the record.",
    more_problems="And {n} more active problems",
    medication="{name}: {dosage}; since {day}",
    dosage_unknown="dosage not recorded",
    no_medications="No active medication records found in the record.",
    more_medications="And {n} more active medications",
    no_allergies="No allergy records found in the record.",
    record_states="The record states {what}.",
    reactions="reactions: {reactions}",
    reaction_unknown="reaction not recorded",
    criticality="criticality {criticality}",
    allergy="{name}: {details}",
    inactive_allergies="Inactive or resolved allergy records: {names}.",
    result="{name} {value} on {day}",
    changes={"up": "up {amount}", "down": "down {amount}", "unchanged": "unchanged"},
    change=", {change} from {value} on {day}",
    last_abnormal="; last abnormal {value} on {day}",
    more_abnormal="And {n} more results with abnormal values",
    rest_of_results="{n} more results within range or without a numeric value are in the record, not listed.",
    no_results="No laboratory results found in the record.",
    blood_pressure="blood pressure {value}",
    vital_signs="Vital signs on {day}: {parts}",
    no_vitals="No vital signs found in the record.",
    settings={
        "AMB": "outpatient",
        "EMER": "emergency",
        "IMP": "inpatient",
        "ACUTE": "inpatient",
        "NONAC": "inpatient",
        "OBSENC": "observation stay",
        "PRENC": "pre-admission",
        "SS": "short stay",
        "VR": "virtual",
        "HH": "home health",
    },
    encounter="encounter",
    reason="; reason: {reasons}",
    earlier={
        "encounters": "earlier encounters",
        "procedures": "earlier procedures",
        "notes": "earlier notes and reports",
        "immunizations": "immunizations",
    },
    not_listed="{counts} are in the record, not listed.",
    no_care="No encounters or procedures found in the record.",
    no_encounters="No encounters found in the record.",
    latest_encounter="Latest encounter {day}, {type}{reasons}",
    latest_reasons=": {reasons}",
    no_reason="; no reason recorded",
    patient="{age} {sex}{deceased}.",
    age="{n}-year-old",
    no_age="Age not recorded,",
    sexes={},
    no_sex="sex not recorded",
    deceased=", deceased",
    no_triage_encounter="No encounter to triage found in the record.",
    screen="Triage screen of the {setting} encounter on {day}: {statement}",
    level_name="{scale} level {level} ({name})",
    level_met="Meets {level}: {reasons}.",
    level_none="Meets no {scale} level-1 or level-2 criterion on what the record shows",
    level_graded="{none}; graded {level}: {reasons}.",
    no_modifier="no modifier of a more urgent level applies (the complaint's own criteria are the nurse's)",
    esi_none=(
        "Meets no ESI level-1 or level-2 criterion on what the record shows (levels 3 to 5 depend on the "
        "resources expected, which these rules do not judge)."
    ),
    level_consider="Consider {level}: {reasons}.",
    supporting="Supporting scores, not criteria of the scale: {titles}.",
    skipped="Not assessed: {titles}.",
    no_recent_findings="No abnormal vital signs or results from the last 30 days found in the record.",
    separator=": ",
    detail="; ",
)

# French typography: a space before ":" and ";"; dates DD/MM/YYYY and decimal commas are the Wording's.
FRENCH_PHRASES = RecordPhrases(
    date_unknown="date inconnue",
    no_value="sans valeur",
    directions={"high": "élevé", "low": "bas", "abnormal": "anormal"},
    range="plage {bounds}",
    default_range="plage adulte par défaut {bounds}",
    between="{low} à {high}",
    onset_unknown="{name}, début non renseigné",
    onset="{name}, début le {day} ({age})",
    recent="récent, moins de 3 mois",
    long_standing="ancien",
    no_problems="Aucun problème actif trouvé dans le dossier.",
    more_problems="Et {n} autres problèmes actifs",
    medication="{name} : {dosage} ; depuis le {day}",
    dosage_unknown="posologie non renseignée",
    no_medications="Aucun traitement actif trouvé dans le dossier.",
    more_medications="Et {n} autres traitements actifs",
    no_allergies="Aucune allergie enregistrée dans le dossier.",
    record_states="Le dossier indique : {what}.",
    reactions="réactions : {reactions}",
    reaction_unknown="réaction non renseignée",
    criticality="criticité {criticality}",
    allergy="{name} : {details}",
    inactive_allergies="Allergies inactives ou résolues : {names}.",
    result="{name} {value} le {day}",
    changes={"up": "en hausse de {amount}", "down": "en baisse de {amount}", "unchanged": "inchangé"},
    change=", {change} par rapport à {value} le {day}",
    last_abnormal=" ; dernière valeur anormale {value} le {day}",
    more_abnormal="Et {n} autres résultats anormaux",
    rest_of_results=(
        "{n} autres résultats dans la plage ou sans valeur numérique figurent dans le dossier, non listés."
    ),
    no_results="Aucun résultat de laboratoire trouvé dans le dossier.",
    blood_pressure="pression artérielle {value}",
    vital_signs="Signes vitaux du {day} : {parts}",
    no_vitals="Aucun signe vital trouvé dans le dossier.",
    settings={
        "AMB": "ambulatoire",
        "EMER": "aux urgences",
        "IMP": "en hospitalisation",
        "ACUTE": "en hospitalisation",
        "NONAC": "en hospitalisation",
        "OBSENC": "en observation",
        "PRENC": "de pré-admission",
        "SS": "de court séjour",
        "VR": "virtuelle",
        "HH": "à domicile",
    },
    encounter="consultation",
    reason=" ; motif : {reasons}",
    earlier={
        "encounters": "consultations antérieures",
        "procedures": "actes antérieurs",
        "notes": "notes et comptes rendus antérieurs",
        "immunizations": "vaccinations",
    },
    not_listed="{counts} figurent dans le dossier, non listés.",
    no_care="Aucune consultation ni aucun acte trouvé dans le dossier.",
    no_encounters="Aucune consultation trouvée dans le dossier.",
    latest_encounter="Dernière consultation le {day}, {type}{reasons}",
    latest_reasons=" : {reasons}",
    no_reason=" ; aucun motif renseigné",
    patient="{sex}, {age}{deceased}.",
    age="{n} ans",
    no_age="âge non renseigné",
    sexes={"female": "Femme", "male": "Homme", "other": "Autre", "unknown": "Sexe inconnu"},
    no_sex="Sexe non renseigné",
    deceased=", décès enregistré",
    no_triage_encounter="Aucune consultation à trier trouvée dans le dossier.",
    screen="Tri de la consultation {setting} du {day} : {statement}",
    level_name="{scale} niveau {level} ({name})",
    level_met="Remplit les critères {level} : {reasons}.",
    level_none="Ne remplit aucun critère {scale} de niveau 1 ou 2 d'après le dossier",
    level_graded="{none} ; classé {level} : {reasons}.",
    no_modifier=(
        "aucun modificateur d'un niveau plus urgent ne s'applique (les critères propres à la plainte "
        "relèvent de l'infirmière)"
    ),
    esi_none=(
        "Ne remplit aucun critère ESI de niveau 1 ou 2 d'après le dossier (les niveaux 3 à 5 dépendent des "
        "ressources attendues, que ces règles ne jugent pas)."
    ),
    level_consider="À envisager, {level} : {reasons}.",
    supporting="Scores d'appoint, hors critères de l'échelle : {titles}.",
    skipped="Non évalué : {titles}.",
    no_recent_findings="Aucun signe vital ni résultat anormal des 30 derniers jours trouvé dans le dossier.",
    separator=" : ",
    detail=" ; ",
)
