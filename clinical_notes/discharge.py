"""The discharge medication guide for the patient: what changed between admission and discharge, composed from
the record in the patient's language, each statement citing the orders it compares.

Medicines started, changed (dose or frequency), stopped and continued, with what each is for when the record
says; the model adds plain-language explanations and what to watch for. Common sig abbreviations are spelled
out beside the record's own dosage text (PO: by mouth, BID: twice a day), as patient-education guidance asks
(AHRQ Health Literacy Universal Precautions Toolkit, 2nd ed., Tool 8: "avoid medical jargon").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinical_notes.draft import Statement
from clinical_notes.language import WORDINGS, Wording
from clinical_notes.statements import day, plain, record
from clinical_notes.timeline import ClinicalTimeline, DischargeMedication

KIND = "discharge-medications"
STAY, STARTED, CHANGED, STOPPED, CONTINUED = (
    "Your hospital stay",
    "New medicines",
    "Changed medicines",
    "Stopped medicines",
    "Continue as before",
)
SECTION_OF = {"started": STARTED, "changed": CHANGED, "stopped": STOPPED, "continued": CONTINUED}
SIG = re.compile(
    r"(?<![A-Za-z])(PO|BID|TID|QID|QD|QHS|HS|PRN|INH|NEB|SC|SQ|IV|IM|DAILY|q\d+h)(?![A-Za-z])", re.I
)


@dataclass(frozen=True)
class GuidePhrases:
    """The words of a discharge guide in one language."""

    stay: str  # "{start}", "{end}"
    reasons: str  # "{reasons}"
    disposition: str  # "{disposition}"
    started: str  # "{name}", "{dosage}"
    changed: str  # "{name}", "{before}", "{dosage}"
    stopped: str  # "{name}", "{before}"
    continued: str  # "{name}", "{dosage}"
    for_what: str  # "{indication}"
    not_recorded: str
    no_list: str  # "{end}"
    none: str  # "{what}"
    hospital_only: str  # "{names}"
    language: str  # "{name}", "{code}", "{used}"
    sig: dict[str, str]


PHRASES = {
    "en": GuidePhrases(
        stay="You were in hospital from {start} to {end}",
        reasons="; reason recorded: {reasons}",
        disposition="; you went {disposition}",
        started="{name}: {dosage}",
        changed="{name}: now {dosage} (before your stay: {before})",
        stopped="{name}: stop taking it (before your stay: {before})",
        continued="{name}: {dosage}",
        for_what=". For: {indication}",
        not_recorded="dose not recorded",
        no_list=(
            "No discharge medication orders found in the record for the stay that ended {end}: this guide "
            "cannot say which medicines to take; the care team must add them."
        ),
        none="No {what} found in the record.",
        hospital_only=(
            "{names}: given only during your hospital stay; not listed in the record to take at home."
        ),
        language=(
            "Preferred language recorded: {name} ({code}); guides are not written in it, so this one is "
            "in {used}."
        ),
        sig={
            "po": "by mouth",
            "bid": "twice a day",
            "tid": "three times a day",
            "qid": "four times a day",
            "qd": "once a day",
            "daily": "once a day",
            "qhs": "at bedtime",
            "hs": "at bedtime",
            "prn": "only when needed",
            "inh": "breathed in",
            "neb": "with a nebulizer",
            "sc": "injected under the skin",
            "sq": "injected under the skin",
            "iv": "into a vein",
            "im": "into a muscle",
        },
    ),
    "fr": GuidePhrases(
        stay="Vous avez été hospitalisé(e) du {start} au {end}",
        reasons=" ; motif enregistré : {reasons}",
        disposition=" ; sortie : {disposition}",
        started="{name} : {dosage}",
        changed="{name} : désormais {dosage} (avant le séjour : {before})",
        stopped="{name} : à arrêter (avant le séjour : {before})",
        continued="{name} : {dosage}",
        for_what=". Pour : {indication}",
        not_recorded="dose non renseignée",
        no_list=(
            "Aucune prescription de sortie trouvée dans le dossier pour le séjour terminé le {end} : ce "
            "guide ne peut pas dire quels médicaments prendre ; l'équipe soignante doit les ajouter."
        ),
        none="Aucun {what} trouvé dans le dossier.",
        hospital_only=(
            "{names} : donnés seulement pendant votre hospitalisation ; pas prescrits pour la maison."
        ),
        language=(
            "Langue préférée enregistrée : {name} ({code}) ; les guides ne sont pas rédigés dans cette "
            "langue, celui-ci est en {used}."
        ),
        sig={
            "po": "par la bouche",
            "bid": "deux fois par jour",
            "tid": "trois fois par jour",
            "qid": "quatre fois par jour",
            "qd": "une fois par jour",
            "daily": "une fois par jour",
            "qhs": "au coucher",
            "hs": "au coucher",
            "prn": "seulement si besoin",
            "inh": "en inhalation",
            "neb": "en nébulisation",
            "sc": "en injection sous la peau",
            "sq": "en injection sous la peau",
            "iv": "dans une veine",
            "im": "dans un muscle",
        },
    ),
    "ko": GuidePhrases(
        stay="{start}부터 {end}까지 입원하셨습니다",
        reasons="; 기록된 입원 사유: {reasons}",
        disposition="; 퇴원: {disposition}",
        started="{name}: {dosage}",
        changed="{name}: 이제 {dosage} (입원 전: {before})",
        stopped="{name}: 복용을 중단하십시오 (입원 전: {before})",
        continued="{name}: {dosage}",
        for_what=". 용도: {indication}",
        not_recorded="용량 기록 없음",
        no_list=(
            "{end}에 끝난 입원의 퇴원 처방을 기록에서 찾을 수 없습니다: 이 안내문은 어떤 약을 드셔야 "
            "하는지 알려드릴 수 없으며, 의료진이 추가해야 합니다."
        ),
        none="{what}을(를) 기록에서 찾을 수 없습니다.",
        hospital_only="{names}: 입원 중에만 투여되었으며 집에서 드실 약으로 기록되지 않았습니다.",
        language=(
            "기록된 선호 언어: {name} ({code}); 이 언어로는 안내문을 작성하지 않아 {used}(으)로 작성했습니다."
        ),
        sig={
            "po": "입으로 복용",
            "bid": "하루 두 번",
            "tid": "하루 세 번",
            "qid": "하루 네 번",
            "qd": "하루 한 번",
            "daily": "하루 한 번",
            "qhs": "자기 전",
            "hs": "자기 전",
            "prn": "필요할 때만",
            "inh": "흡입",
            "neb": "분무기로 흡입",
            "sc": "피하 주사",
            "sq": "피하 주사",
            "iv": "정맥 주사",
            "im": "근육 주사",
        },
    ),
    "zh-Hant": GuidePhrases(
        stay="您於{start}至{end}住院",
        reasons="；記錄的住院原因：{reasons}",
        disposition="；出院去向：{disposition}",
        started="{name}：{dosage}",
        changed="{name}：現在為 {dosage}（住院前：{before}）",
        stopped="{name}：請停止服用（住院前：{before}）",
        continued="{name}：{dosage}",
        for_what="。用途：{indication}",
        not_recorded="未記錄劑量",
        no_list="紀錄中未見{end}結束之住院的出院處方：本說明無法告訴您該服用哪些藥物，須由醫療團隊補上。",
        none="紀錄中未見{what}。",
        hospital_only="{names}：僅在住院期間使用；紀錄中未列為回家後服用。",
        language="記錄的偏好語言：{name}（{code}）；本說明不以該語言撰寫，因此以{used}撰寫。",
        sig={
            "po": "口服",
            "bid": "一天兩次",
            "tid": "一天三次",
            "qid": "一天四次",
            "qd": "一天一次",
            "daily": "一天一次",
            "qhs": "睡前",
            "hs": "睡前",
            "prn": "需要時才用",
            "inh": "吸入",
            "neb": "以霧化器吸入",
            "sc": "皮下注射",
            "sq": "皮下注射",
            "iv": "靜脈注射",
            "im": "肌肉注射",
        },
    ),
}
# What each change section holds, for its "none" statement.
NONE_WHAT = {
    "en": {
        STARTED: "new medicines",
        CHANGED: "changed medicines",
        STOPPED: "stopped medicines",
        CONTINUED: "medicines to continue",
    },
    "fr": {
        STARTED: "nouveau médicament",
        CHANGED: "médicament modifié",
        STOPPED: "médicament arrêté",
        CONTINUED: "médicament à poursuivre",
    },
    "ko": {STARTED: "새로 시작한 약", CHANGED: "바뀐 약", STOPPED: "중단한 약", CONTINUED: "계속 드실 약"},
    "zh-Hant": {
        STARTED: "新開始的藥物",
        CHANGED: "有改變的藥物",
        STOPPED: "停用的藥物",
        CONTINUED: "繼續服用的藥物",
    },
}
LANGUAGE_NAMES = {"en": "English", "fr": "French", "ko": "Korean", "zh-Hant": "traditional Chinese"}
# BCP-47 tags → the draft language that writes them; zh-TW and zh-HK read traditional characters, zh-CN and
# zh-Hans simplified ones, which no draft is written in.
_TRADITIONAL = re.compile(r"^zh(-hant|-tw|-hk|-mo)(-|$)", re.IGNORECASE)


def draft_language(tag: str | None) -> str | None:
    """The draft language that serves a BCP-47 tag (None: none does)."""
    if not tag:
        return None
    if _TRADITIONAL.match(tag):
        return "zh-Hant"
    base = tag.split("-", 1)[0].lower()
    return base if base in WORDINGS and base != "zh" else None


def explained(dosage: str | None, said: GuidePhrases) -> str:
    """The record's dosage text, with its sig abbreviations spelled out after it ("PO BID: by mouth, twice a
    day")."""
    if not dosage:
        return said.not_recorded
    meanings = list(dict.fromkeys(said.sig[m.lower()] for m in SIG.findall(dosage) if m.lower() in said.sig))
    return f"{dosage} ({', '.join(meanings)})" if meanings else dosage


def _medication(m: DischargeMedication, said: GuidePhrases) -> Statement:
    template = getattr(said, m.change)
    text = template.format(
        name=plain(m.name), dosage=explained(m.dosage, said), before=explained(m.before_dosage, said)
    )
    if m.indication:
        text += said.for_what.format(indication=plain(m.indication))
    refs = [r for r in (m.ref, m.before_ref, m.indication_ref) if r]
    return record(text + ".", refs)


def compose_discharge(t: ClinicalTimeline, words: Wording) -> dict[str, list[Statement]]:
    """The guide's statements from the record, by section title (an empty dict: no discharge to guide)."""
    d = t.discharge
    if d is None:
        return {}
    said = PHRASES[words.code]
    stay = said.stay.format(start=day(d.start, words), end=day(d.end, words))
    if d.reasons:
        stay += said.reasons.format(reasons=", ".join(plain(r) for r in d.reasons))
    if d.disposition:
        stay += said.disposition.format(disposition=d.disposition.lower())
    out: dict[str, list[Statement]] = {STAY: [record(stay + ".", [d.encounter])]}
    if t.patient.language and draft_language(t.patient.language) is None:
        name = t.patient.language_name or t.patient.language
        text = said.language.format(name=name, code=t.patient.language, used=LANGUAGE_NAMES[words.code])
        out[STAY].append(record(text, [t.patient.ref]))
    if not d.listed:
        out[STAY].append(record(said.no_list.format(end=day(d.end, words)), [d.encounter]))
        return out
    for change, title in SECTION_OF.items():
        found = [_medication(m, said) for m in d.medications if m.change == change]
        out[title] = found or [record(said.none.format(what=NONE_WHAT[words.code][title]))]
    if d.hospital_only:
        out[CONTINUED].append(
            record(said.hospital_only.format(names=", ".join(d.hospital_only)), [d.encounter])
        )
    return out
