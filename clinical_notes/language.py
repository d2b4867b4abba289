"""The words of a draft in each output language: the prompt's language rule, titles, the rendered frame, the
verifier's hedging lexicon, and how dates and decimals are written (normalized for checking).

The structured draft keeps the English section titles as its keys; only what a clinician reads is localized.
Statements composed from the record keep the record's own words (names, values, units) with this language's
connecting words (clinical_notes.record_phrases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from clinical_notes import cjk
from clinical_notes.record_phrases import ENGLISH_PHRASES, FRENCH_PHRASES, RecordPhrases
from clinical_notes.record_phrases_cjk import CHINESE_PHRASES, KOREAN_PHRASES

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
    patient_draft: str = (
        "> **For the patient, once approved.** Your care team checks and approves this guide before it is "
        "given to you; ask them about anything that is unclear."
    )
    reading_level: str = "_Reading level: {measure}._"
    guidelines: str = "Guideline passages cited (the hospital's library, not the patient's record)"
    date_format: str = "{y:04d}-{m:02d}-{d:02d}"
    decimal_mark: str = "."
    spaced: bool = True  # False: words are not separated by spaces (Korean particles, Chinese)

    def title(self, kind: str, default: str) -> str:
        """The kind's note title."""
        return self.kind_titles.get(kind, default)

    def section(self, title: str) -> str:
        """A section title as the clinician reads it."""
        return self.section_titles.get(title, title)

    def day(self, iso: str) -> str:
        """An ISO date (or date-time) as this language writes it."""
        parts = iso[:10].split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return self.date_format.format(y=int(parts[0]), m=int(parts[1]), d=int(parts[2]))
        return iso[:10]

    def decimal(self, number: str) -> str:
        """A number as this language writes it (7.5 → 7,5 in French)."""
        return number.replace(".", self.decimal_mark)

    def for_checking(self, text: str) -> str:
        """The text with this language's dates, decimal commas and sex words as the verifier reads them."""
        if not self.spaced:
            return cjk.for_checking(text)
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
    removed_some="model statements removed for failing a check: {n}",
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
    date_format="{d:02d}/{m:02d}/{y:04d}",
    decimal_mark=",",
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
        "discharge-medications": (
            "Vos médicaments après l'hospitalisation (brouillon IA à valider par l'équipe)"
        ),
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
        "Your hospital stay": "Votre séjour",
        "What changed, in plain words": "Ce qui change, en termes simples",
        "New medicines": "Nouveaux médicaments",
        "Changed medicines": "Médicaments modifiés",
        "Stopped medicines": "Médicaments arrêtés",
        "Continue as before": "À poursuivre comme avant",
        "What to watch for": "À surveiller",
    },
    banner=(
        "> **Brouillon généré par IA, non relu.** Pas un dispositif médical : un clinicien doit le relire, "
        "le corriger et le valider avant tout usage. Les énoncés marqués _(modèle)_ ont été écrits par un "
        "modèle de langage et vérifiés contre le dossier ; tous les autres sont tirés du dossier. Chaque "
        "énoncé cite ses sources."
    ),
    patient_draft=(
        "> **Pour le patient, une fois validé.** Votre équipe soignante vérifie et valide ce guide avant de "
        "vous le remettre ; posez-lui toute question."
    ),
    reading_level="_Lisibilité : {measure}._",
    guidelines="Passages de recommandations cités (bibliothèque de l'hôpital, pas le dossier du patient)",
    flags="Alertes",
    sources="Sources",
    model_mark="_(modèle)_",
    unavailable="_Synthèse du modèle indisponible : {reason}. Les faits ci-dessous viennent du dossier._",
    verification=(
        "_Vérification : chaque énoncé ci-dessus a été contrôlé contre le dossier ({checked}) ; {removed}._"
    ),
    removed_none="aucun retiré",
    removed_some="énoncés du modèle retirés après un contrôle échoué : {n}",
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

KOREAN = Wording(
    code="ko",
    date_format="{y:04d}년 {m}월 {d}일",
    spaced=False,
    prompt_rule=(
        "- Write every statement, title and rationale in Korean (한국어). Keep the names of problems, drugs "
        "and tests, and every number and unit, exactly as the timeline writes them; write dates as "
        "2024년 3월 12일. Hedge assessments in Korean: 「시사합니다」, 「가능성이 있습니다」, "
        "「고려하십시오」."
    ),
    kind_titles={
        "progress": "경과 요약 (AI 초안)",
        "soap": "SOAP 노트 (AI 초안)",
        "triage": "분류 경고 (AI 초안)",
        "discharge-medications": "퇴원 후 복용하실 약 (AI 초안: 의료진 승인 후 전달)",
    },
    section_titles={
        "Summary": "요약",
        "Interval changes": "지난 진료 이후 변화",
        "Active problems": "활성 문제",
        "Medications": "투약",
        "Allergies": "알레르기",
        "Recent results": "최근 결과",
        "Recent care": "최근 진료",
        "Assessment": "평가",
        "Plan considerations": "계획 고려사항",
        "Subjective": "주관적 소견",
        "Objective": "객관적 소견",
        "Plan": "계획",
        "Findings": "소견",
        "Your hospital stay": "입원 기간",
        "What changed, in plain words": "무엇이 바뀌었는지 쉽게 설명",
        "New medicines": "새로 시작한 약",
        "Changed medicines": "바뀐 약",
        "Stopped medicines": "중단한 약",
        "Continue as before": "계속 드실 약",
        "What to watch for": "주의할 점",
    },
    banner=(
        "> **AI가 생성한 초안이며 검토되지 않았습니다.** 의료기기가 아닙니다: 사용 전에 임상의가 "
        "검토, 수정 및 승인해야 합니다. _(모델)_ 표시가 있는 문장은 언어 모델이 작성하고 기록과 "
        "대조하여 확인한 것이며, 나머지는 기록에서 작성되었습니다. 모든 문장은 출처를 인용합니다."
    ),
    patient_draft=(
        "> **승인 후 환자분께 전달됩니다.** 의료진이 이 안내문을 확인하고 승인한 뒤에 드립니다. 궁금한 점은 "
        "의료진에게 물어보십시오."
    ),
    reading_level="_읽기 수준: {measure}._",
    guidelines="인용한 지침 구절 (환자 기록이 아닌 병원 지침 라이브러리)",
    flags="경고",
    sources="출처",
    model_mark="_(모델)_",
    unavailable="_모델 작성 부분 없음: {reason}. 아래 사실은 기록에서 가져왔습니다._",
    verification="_확인: 위의 모든 문장은 기록과 대조하여 확인되었습니다 ({checked}); {removed}._",
    removed_none="삭제된 문장 없음",
    removed_some="확인에 실패한 모델 문장 {n}개가 삭제되었습니다",
    severities={"critical": "위급", "warning": "주의", "info": "정보"},
    authors={"rule": "규칙", "model": "모델"},
    not_in_timeline="타임라인에 없음",
    phrases=KOREAN_PHRASES,
    hedged=re.compile(
        r"(시사|가능성|가능할|고려|의심|추정|배제할 수 없|감별|병력|일치|부합|보입니다|보임|수 있|듯|우려|"
        r"것으로 보|확인이 필요|평가가 필요)"
    ),
    definitive=re.compile(
        r"(진단되었|진단받았|진단됨|진단입니다|확진|확실히|틀림없|앓고 있|걸렸|(으?로|이) 확인되었|"
        r"[가-힣]*(염|증|병|암|부전|경색|골절|패혈증)(이다|입니다)(?![가-힣]))"
    ),
    about_the_record=(
        re.compile(r"기록에서 찾을 수 없습니다\.?$"),
        re.compile(r"기록에 있으나 여기에 나열하지 않았습니다\.?$"),
    ),
)

CHINESE = Wording(
    code="zh-Hant",
    date_format="{y:04d}年{m}月{d}日",
    spaced=False,
    prompt_rule=(
        "- Write every statement, title and rationale in traditional Chinese as written in Taiwan "
        "(繁體中文). Keep the names of problems, drugs and tests, and every number and unit, exactly as "
        "the timeline writes them; write dates as 2024年3月12日. Hedge assessments in Chinese: "
        "「提示」、「可能」、「建議考慮」."
    ),
    kind_titles={
        "progress": "病程摘要（AI 草稿）",
        "soap": "SOAP 病歷（AI 草稿）",
        "triage": "檢傷警示（AI 草稿）",
        "discharge-medications": "出院後的用藥說明（AI 草稿：經醫療團隊核可後交給您）",
    },
    section_titles={
        "Summary": "摘要",
        "Interval changes": "上次就診以來的變化",
        "Active problems": "現存問題",
        "Medications": "用藥",
        "Allergies": "過敏",
        "Recent results": "近期結果",
        "Recent care": "近期照護",
        "Assessment": "評估",
        "Plan considerations": "計畫考量",
        "Subjective": "主觀資料",
        "Objective": "客觀資料",
        "Plan": "計畫",
        "Findings": "發現",
        "Your hospital stay": "您的住院",
        "What changed, in plain words": "用藥改變的白話說明",
        "New medicines": "新開始的藥物",
        "Changed medicines": "有改變的藥物",
        "Stopped medicines": "停用的藥物",
        "Continue as before": "照常繼續服用",
        "What to watch for": "需要注意的情況",
    },
    banner=(
        "> **AI 產生的草稿，尚未審閱。** 非醫療器材：使用前須由臨床醫師審閱、修改並核可。"
        "標示 _（模型）_ 的陳述由語言模型撰寫並已與紀錄核對；其餘皆取自紀錄。每項陳述均引用其來源。"
    ),
    patient_draft="> **核可後交給病人。** 醫療團隊會先檢查並核可本說明再交給您；如有不清楚之處請詢問他們。",
    reading_level="_易讀性：{measure}。_",
    guidelines="引用的指引段落（醫院指引庫，非病人紀錄）",
    flags="警示",
    sources="來源",
    model_mark="_（模型）_",
    unavailable="_模型撰寫部分無法提供：{reason}。以下事實取自紀錄。_",
    verification="_核對：以上每項陳述均已與紀錄核對（{checked}）；{removed}。_",
    removed_none="無刪除",
    removed_some="有 {n} 項模型陳述因未通過核對而刪除",
    severities={"critical": "危急", "warning": "警告", "info": "資訊"},
    authors={"rule": "規則", "model": "模型"},
    not_in_timeline="不在時間軸中",
    phrases=CHINESE_PHRASES,
    hedged=re.compile(r"(提示|可能|考慮|疑似|懷疑|符合|不排除|鑑別|病史|建議|或許|也許|傾向|需排除|有待)"),
    definitive=re.compile(r"(確診|診斷為|診斷是|確定為|確定是|肯定|罹患|患有|得了)"),
    about_the_record=(
        re.compile(r"^紀錄中未見[^。]*。?$"),
        re.compile(r"見於紀錄，此處未列出。?$"),
    ),
)

WORDINGS = {w.code: w for w in (ENGLISH, FRENCH, KOREAN, CHINESE)}


def wording(language: str) -> Wording:
    """The wording of a language code (ValueError for one without)."""
    try:
        return WORDINGS[language]
    except KeyError:
        raise ValueError(f"no wording for language {language!r} (known: {', '.join(WORDINGS)})") from None
