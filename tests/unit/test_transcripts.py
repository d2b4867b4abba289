"""Visit transcripts: parsing, what is composed from them, turn citations and the verifier's turn checks."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest

from bench.aci_bundles import as_vtt, bundle
from clinical_notes.draft import NoteDraft, Section, Statement
from clinical_notes.timeline import KEY_PATTERN
from clinical_notes.transcript import parse_transcript, split_turn_ref
from clinical_notes.transcript_checks import WithTranscript
from clinical_notes.transcript_compose import NO_TRANSCRIPT, transcript_statements
from clinical_notes.transcript_facts import TranscriptFacts, facts_of, spoken_numbers, statement_polarity
from clinical_notes.verifier import Verifier
from fhir_adapters.evidence import RecordEvidence
from fhir_adapters.record import record_from_bundle_json
from fhir_adapters.transcripts import TranscriptRules, find_transcript
from services.core.errors import InputError

REF = "DocumentReference/tx-1"
VISIT = """[doctor] hi , how are you feeling today ?
[patient] i've had pain in my right knee for about two weeks .
[doctor] any fever or chills ?
[patient] no .
[doctor] are you taking anything for it ?
[patient] i take ibuprofen 400 milligrams twice a day .
[doctor] my mother had a cough , but do you have a cough ?
[patient] no , no cough .
[doctor] okay , let's do a quick physical exam . your knee has mild swelling and tenderness on palpation .
[doctor] i'm going to prescribe meloxicam fifteen milligrams once a day .
[patient] okay ."""
RULES = TranscriptRules(frozenset({"urn:ehr-summarizer:document-kind|visit-transcript"}), 1_000_000, 1000)


def _transcript(text: str = VISIT, content_type: str = "text/plain") -> Any:
    return parse_transcript(text, content_type, REF, max_turns=1000, date="2026-11-02")


def test_plain_text_turns_are_the_non_empty_lines_with_their_speakers() -> None:
    t = _transcript("[Doctor] Any fever?\n\n[patient_guest] she had one\nno tag here\n")
    assert [(x.n, x.speaker, x.text) for x in t.turns] == [
        (1, "doctor", "Any fever?"),
        (2, "other", "she had one"),
        (3, "unknown", "no tag here"),
    ]
    assert t.turn_ref(2) == f"{REF}#turn-2" and split_turn_ref(t.turn_ref(2)) == (REF, 2)
    assert split_turn_ref("Observation/1#turn-2") is None and split_turn_ref(f"{REF}#turn-x") is None


def test_webvtt_turns_are_the_cues_with_their_voices() -> None:
    t = _transcript(as_vtt(VISIT), "text/vtt")
    assert len(t.turns) == len(VISIT.splitlines())
    assert (t.turns[3].speaker, t.turns[3].text) == ("patient", "no .")
    with pytest.raises(InputError, match="not valid WebVTT"):
        _transcript("[doctor] a plain line, not WebVTT", "text/vtt")
    with pytest.raises(InputError, match="neither text/plain nor text/vtt"):
        _transcript(VISIT, "application/pdf")


def test_untagged_empty_and_capped_transcripts_say_what_was_not_read() -> None:
    assert "no speaker tags" in _transcript("fever since monday\nno cough").problems[0]
    assert facts_of(_transcript("i have a fever\nno cough")).symptoms == []  # who spoke is unknown
    assert "no turns" in _transcript("\n \n").problems[0]
    capped = parse_transcript(VISIT, "text/plain", REF, max_turns=3)
    assert capped.left_out == len(VISIT.splitlines()) - 3 and "cut at 3 turns" in capped.problems[0]


def test_reports_denials_by_answer_and_medications_are_composed_with_their_turns() -> None:
    facts = facts_of(_transcript())
    by = {(s.name, s.status): s for s in facts.symptoms}
    assert by[("knee pain", "reported")].turns == (2,)
    assert by[("knee pain", "reported")].said == "for about two weeks"
    assert by[("fever", "denied")].turns == (3, 4) and by[("chills", "denied")].turns == (3, 4)
    assert by[("cough", "denied")].uncertain is None
    assert ("cough", "reported") not in by  # the mother's cough is family history
    assert all(s.uncertain is None for s in facts.symptoms)
    meds = {(m.name, m.status): m for m in facts.medications}
    assert (meds[("ibuprofen", "taking")].dose, meds[("ibuprofen", "taking")].frequency) == (
        "400 mg",
        "twice a day",
    )
    assert meds[("meloxicam", "planned")].dose == "15 mg"
    assert any("mild swelling" in f.text for f in facts.findings)
    composed = transcript_statements(_transcript(), facts)
    texts = [s.text for s in composed["Subjective"]]
    assert 'Reports knee pain ("for about two weeks").' in texts
    assert "Denies fever and chills." in texts
    assert composed["Plan"][0].citations == [f"{REF}#turn-10"]


def test_swapped_speaker_tags_leave_a_denial_uncertain_never_inverted() -> None:
    swapped = _transcript("[patient] any chest pain ?\n[doctor] no .")
    facts = facts_of(swapped)
    assert [(s.name, s.status) for s in facts.symptoms] == [("chest pain", "denied")]
    assert facts.symptoms[0].uncertain and "swapped" in facts.symptoms[0].uncertain
    texts = [s.text for s in transcript_statements(swapped, facts)["Subjective"]]
    assert any(t.startswith("Possible denial of chest pain, uncertain") for t in texts)
    assert not any(t.startswith(("Denies", "Reports")) for t in texts)
    first_person = facts_of(_transcript("[doctor] i have had chest pain since monday ."))
    assert first_person.symptoms[0].uncertain is not None


def _read(text: str) -> set[tuple[str, str, bool]]:
    return {(s.name, s.status, s.uncertain is not None) for s in facts_of(_transcript(text)).symptoms}


def test_spoken_readings_of_wishes_answers_and_dictation() -> None:
    wished = _read("[doctor] any weight loss ?\n[patient] i wish i had some weight loss .")
    assert ("weight loss", "reported", False) not in wished  # a wish is no report
    no_then = _read("[doctor] any pain ?\n[patient] no , the weight loss has decreased the chest pain .")
    assert ("chest pain", "denied", False) not in no_then  # "no ," answers; it negates nothing after it
    assert ("nausea", "denied", False) in _read("[doctor] any nausea ?\n[patient] on my body no not really")
    bare_no = _read("[doctor] any nausea or vomiting ?\n[patient] not really . maybe a bit of nausea .")
    assert {("vomiting", "denied", False), ("nausea", "reported", False)} <= bare_no
    assert ("vomiting", "denied", False) in _read(
        "[doctor] any nausea or vomiting ?\n[patient] maybe a bit of nausea , no ."
    )  # the answer picks nausea from what was asked
    corrected = _read("[doctor] joint pain ... i mean , like muscle aches ?\n[patient] no .")
    assert corrected == {("muscle pain", "denied", False)}  # the question a speaker corrects to is answered
    assert _read("[doctor] any fever ?\n[patient] no just kind of a headache") == {
        ("fever", "denied", False),
        ("headache", "reported", False),
    }  # "no just" answers the question; the headache after it is reported
    dictated = _read("[doctor] chief complaint is left arm pain .")
    assert dictated == {("arm pain", "reported", False)}
    assert ("numbness", "reported", False) in _read("[patient] a little bit of numbing in my hand .")


def test_an_answer_that_picks_from_the_list_denies_the_rest_and_only_then() -> None:
    picked = _read(
        "[doctor] any chest pain , shortness of breath , or belly pain ?\n"
        "[patient] shortness of breath . no belly pain though ."
    )
    assert picked == {
        ("chest pain", "denied", False),
        ("shortness of breath", "reported", False),
        ("abdominal pain", "denied", False),
    }
    assert _read("[doctor] any cough ? fever ?\n[patient] no fever .") == {("fever", "denied", False)}
    yes_first = _read(
        "[doctor] any weight gain or swelling in your legs ?\n"
        "[patient] yeah i ca n't see my ankles and i gained about ten pounds"
    )
    assert yes_first == {("weight gain", "reported", False)}  # a yes may take more of the list: unsaid
    rest = _read(
        "[doctor] anything else , fever chills , any sore throat ?\n"
        "[patient] a little congestion . but everything else has been okay ."
    )
    assert {("fever", "denied", False), ("chills", "denied", False), ("sore throat", "denied", False)} <= rest


def test_speech_recognition_marks_and_spoken_list_questions_are_read() -> None:
    cut_off = _read(
        "[doctor] have you had any other symptoms , chest pain , nausea or vomiting-\n[patient] no ."
    )
    assert ("vomiting", "denied", False) in cut_off  # "vomiting-": a word cut off is still said
    no_mark = _read(
        "[doctor] okay and any other symptoms like a cough or dizziness or anything like that\n[patient] no"
    )
    assert no_mark == {("cough", "denied", False), ("dizziness", "denied", False)}  # spoken "any other" asks
    assert (
        _read("[doctor] have you noticed any other joint pain like in your elbows\n[patient] a bit") == set()
    )
    listed = _read(
        "[doctor] any other symptoms ? specifically fever , rashes , neck stiffness , weakness ?\n"
        "[patient] no . ca n't recall a fever or any kind of rash ."
    )
    assert {("stiffness", "denied", False), ("weakness", "denied", False)} <= listed  # the list is asked
    either = _read(
        "[doctor] like , just , like , reflux or are you actually vomiting ?\n[patient] actually vomiting ."
    )
    assert ("heartburn", "denied", False) not in either  # a choice of words for one event, not a list


def test_spoken_yeses_and_qualified_yeses() -> None:
    assert _read("[doctor] any difficulty swallowing ?\n[patient] mm-hmm . i did .") == {
        ("difficulty swallowing", "reported", False)
    }  # "mm-hmm" is a yes, not two hesitations
    assert _read("[doctor] any fever ?\n[patient] uh-huh") == {("fever", "reported", False)}
    assert _read(
        "[doctor] did you have some shortness of breath\n[patient] i did but i did n't think much of it"
    ) == {("shortness of breath", "reported", False)}
    assert _read(
        "[doctor] do you feel short of breath ?\n[patient] uh , just when i'm doing the projects ."
    ) == {("shortness of breath", "reported", False)}
    checked = (
        "[doctor] before i do , just want to make sure you're not having any chest pain today\n[patient] "
    )
    assert _read(checked + "no") == {
        ("chest pain", "denied", False)
    }  # a denial put to the patient to confirm
    assert _read(checked + "yeah") == set()  # a yes to a negated question says not which
    assert _read("[doctor] no shortness of breath just wan na make sure\n[patient] no") == {
        ("shortness of breath", "denied", False)
    }
    woke = "[doctor] can you think of what caused the chest pain ? did you wake up with it ?\n[patient] no ."
    assert _read(woke) == set()  # the no answers the question about "it", not whether there was chest pain
    assert _read("[doctor] any fever ? anything else like that ?\n[patient] no .") == {
        ("fever", "denied", False)
    }
    assert _read("[doctor] any fever ?\n[patient] i did not .") == {("fever", "denied", False)}
    assert _read("[doctor] any fever ?\n[patient] i did n't check .") == set()


def test_a_pain_asked_where_the_clinician_points_and_a_pair_said_once() -> None:
    pointed = _read("[doctor] the neck is fine . exam of the low back . any pain here ?\n[patient] no")
    assert pointed == {("back pain", "denied", False)}  # the part named last before "here"
    assert _read("[doctor] any pain when you walk ?\n[patient] no .") == {("pain", "denied", False)}
    assert _read("[doctor] any weight loss or gain ?\n[patient] no .") == {
        ("weight loss", "denied", False),
        ("weight gain", "denied", False),
    }


def test_where_it_hurts_is_located_by_the_answer() -> None:
    assert _read("[doctor] where are you hurting ?\n[patient] right in the groin area .") == {
        ("groin pain", "reported", False)
    }
    assert _read("[doctor] where are you hurting ?\n[patient] well , it moves around .") == set()
    assert _read("[patient] where does it hurt ?\n[doctor] in your knee .") == set()  # asked by the patient


def test_studies_read_out_are_labelled_apart_from_the_exam_and_quotes_end_cleanly() -> None:
    text = (
        "[doctor] let's do a quick physical exam . the knee has mild swelling . "
        "your x-ray shows mild degenerative changes .\n"
        "[doctor] and you're allergic to penicillin and"
    )
    transcript = _transcript(text)
    composed = transcript_statements(transcript, facts_of(transcript))
    objective = [s.text for s in composed["Objective"]]
    assert 'Examination, as the clinician said: "the knee has mild swelling."' in objective
    assert 'Study read out, as the clinician said: "your x-ray shows mild degenerative changes."' in objective
    subjective = [s.text for s in composed["Subjective"]]
    assert 'Allergies as said: "and you\'re allergic to penicillin"' in subjective  # no dangling "and"


def _reason(text: str) -> list[str]:
    transcript = _transcript(text)
    subjective = transcript_statements(transcript, facts_of(transcript))["Subjective"]
    return [s.text for s in subjective if s.text.startswith("Reason for the visit")]


def test_the_reason_for_the_visit_is_quoted_from_the_opening() -> None:
    assert _reason(
        "[doctor] hi .\n[doctor] keith is a 58-year-old male here for evaluation of his sugar ."
    ) == ['Reason for the visit, as said: "keith is a 58-year-old male here for evaluation of his sugar."']
    assert _reason(
        "[doctor] so you've been having some problems with your right hip ?\n[patient] yeah ."
    ) == [
        'Reason for the visit, as said: "so you\'ve been having some problems with your right hip?" "yeah."'
    ]
    assert _reason("[doctor] any problems with your bowels ?\n[patient] no .") == []  # a review of systems
    assert _reason("[doctor] are you here for your knee ?\n[patient] no , my back .") == []


def test_spoken_answers_reasons_and_weight_changes() -> None:
    assert _read(
        "[doctor] have you lost any weight ?\n[patient] no i wish unfortunately i've gained some weight"
    ) == {("weight gain", "reported", False)}  # "no i" answers the question and negates nothing after it
    assert (
        _read("[doctor] any shortness of breath when you climb stairs ?\n[patient] i do n't do any of that")
        == set()
    )
    assert _read("[patient] no , no weakness , just the weird numbing") == {
        ("weakness", "denied", False),
        ("numbness", "reported", False),
    }  # "just" ends the denial's scope
    assert _read("[patient] i do n't have quite as much shortness of breath") == {
        ("shortness of breath", "reported", False)
    }  # less of it is still some
    assert _read("[patient] my kids have had runny noses and a cough") == set()  # the children's
    assert _read("[doctor] what conditions run in your family ?\n[patient] depression and diabetes") == set()
    ankle = _read(
        "[doctor] you're coming in for some right ankle pain , how did you fall ?\n[patient] it just hurts"
    )
    assert ("ankle pain", "reported", False) in ankle  # the part the clinician named just before
    assert _read("[patient] i fell on my hip and now it hurts") == {("hip pain", "reported", False)}
    assert _read("[patient] my knee and my hip , it hurts") == {("pain", "reported", False)}  # which one?
    assert _read("[patient] a dull pain in the back of my head") == {("headache", "reported", False)}
    assert _read("[doctor] is your urination stream weak\n[patient] yeah i'd say so") == set()  # not weakness
    assert _read("[doctor] i'll give you some numbing medicine") == set()
    assert _read("[doctor] any constipation ?\n[patient] hmmm no i had diarrhea last week") == {
        ("constipation", "denied", False),
        ("diarrhea", "reported", False),
    }  # "hmmm no i" answers like "no i" does
    assert (
        _read("[doctor] any swelling ? any slips with your diet ?\n[patient] no i yeah i do i like to eat")
        == set()
    )
    assert ("chest pain", "denied", False) in _read(
        "[doctor] any chest pain ?\n[patient] no . none of those . i do notice my ankles swell"
    )  # the first sentence answers
    assert _read("[doctor] the risks of surgery include bleeding and infection") == set()  # what could happen
    worst = (
        "[patient] i have a headache\n[doctor] this is n't the worst headache you've ever had ?\n[patient] no"
    )
    assert ("headache", "denied", False) not in _read(worst)  # grading the headache denies nothing
    assert _read("[patient] i am able to put weight on it now") == set()  # standing on a limb
    assert _read("[patient] i put on some weight") == {("weight gain", "reported", False)}
    assert _read("[doctor] any shortness of breath ?\n[patient] i do n't .") == {
        ("shortness of breath", "denied", False)
    }
    assert _read("[doctor] any belly pain ?\n[patient] sometime my belly hurts up here") == {
        ("abdominal pain", "reported", False)
    }
    assert _read(
        "[doctor] says you have you're coming in today for some right ankle pain so tell me what happened"
    ) == {("ankle pain", "reported", False)}
    assert _read("[doctor] do you get numbing and tingling in your feet ?\n[patient] occasionally yeah") == {
        ("numbness", "reported", False),
        ("tingling", "reported", False),
    }
    assert _read("[doctor] any nausea or vomiting ?\n[patient] yes .") == set()  # which of them is unsaid
    assert statement_polarity("Constitutional: No fevers, chills. Positive fatigue.") == {
        "fever": "denied",
        "chills": "denied",
        "fatigue": "reported",
    }
    assert statement_polarity("Fever: no") == {"fever": "denied"}


def test_exam_findings_are_no_reports_and_onsets_and_readings_name_what_they_are() -> None:
    exam = "[doctor] let's do a quick physical exam . you have bilateral wheezing and no edema of the legs ."
    assert _read(exam) == set()  # findings, not what the patient reports ("bilateral" is not "later")
    facts = facts_of(_transcript("[doctor] for your depression we'll start you on a new medication ."))
    assert [(f.name, f.said) for f in facts.symptoms] == [("depression", None)]
    scheduled = facts_of(_transcript("[doctor] we'll check your hemoglobin a1c in three months ."))
    assert scheduled.measurements == []  # a number before a unit of time schedules; it is no reading
    assert [m.name for m in facts_of(_transcript("[doctor] your a1c is seven point two .")).measurements] == [
        "hemoglobin a1c"
    ]
    threshold = facts_of(_transcript("[doctor] weigh yourself daily and call me if you gain three pounds"))
    assert threshold.measurements == []  # an instruction's threshold is no reading
    both = facts_of(_transcript("[doctor] your heart rate is seventy two your respirations are eighteen"))
    assert [m.text for m in both.measurements] == ["heart rate is seventy two", "respirations are eighteen"]
    dosed = facts_of(
        _transcript("[doctor] your hemoglobin a1c continue the metformin five hundred milligrams")
    )
    assert dosed.measurements == []  # the number is the next drug's dose
    pressure = facts_of(
        _transcript("[doctor] blood pressure looks good about one twenty over seventy your heart")
    )
    assert [m.text for m in pressure.measurements] == [
        "blood pressure looks good about one twenty over seventy"
    ]

    def said(text: str) -> list[str]:
        return [m.text for m in facts_of(_transcript(f"[doctor] {text}")).measurements]

    assert said("your temperature is ninety eight . two which is normal") == [
        "temperature is ninety eight. two"
    ]
    # The reading goes on past the window while its numbers do.
    long_way = "blood pressure is pretty good in the office today it looks like it's one twenty eight over"
    assert said(f"your {long_way} seventy two") == [f"{long_way} seventy two"]
    assert said("your blood sugars are running in the one twenties") == [
        "blood sugars are running in the one twenties"
    ]
    assert said("we want your hemoglobin a1c below seven") == []  # a target
    assert said("the blood pressure cuff at home did you end up getting one") == []  # a question
    assert said("for the high blood pressure you do have this one plus edema in your legs") == []  # a grade
    far = (
        "your blood pressure is a little elevated but that's probably the pain our body can respond that way "
        "we are looking at like a hundred and forty over over seventy"
    )
    assert said(far) == [far.removeprefix("your ")]  # "N over M" is read far after its name

    def own(text: str) -> list[str]:
        return [m.text for m in facts_of(_transcript(f"[patient] {text}")).own_readings]

    assert own("yeah my a1c is six point seven it's pretty well controlled") == ["a1c is six point seven"]
    assert own("my blood sugar has been running a little higher at about one thirty") == [
        "blood sugar has been running a little higher at about one thirty"
    ]
    assert own("my a1c that at one point was like thirteen") == []  # "at one point" is no reading
    assert own("any blood sugar that goes over two hundred i check") == []  # a threshold
    assert own("your respiratory rate is twenty") == []  # the clinician's words under the patient's tag
    assert facts_of(_transcript("[patient] my a1c is six point seven")).measurements == []
    assert _read("[patient] i just ca n't catch my breath") == {("shortness of breath", "reported", False)}
    undated = facts_of(_transcript("[patient] my ankle has been swollen since it started"))
    assert [f.said for f in undated.symptoms] == [None]  # "since it started" names no time
    dated = facts_of(_transcript("[patient] the headaches started about three days ago ."))
    assert [(f.name, f.said) for f in dated.symptoms] == [("headache", "started about three days ago")]


def _findings(text: str) -> list[str]:
    return [f.text for f in facts_of(_transcript(text)).findings]


def test_each_system_listened_to_is_a_finding_and_what_says_nothing_is_none() -> None:
    turn = (
        "[doctor] okay so i'm just gon na do a physical exam i'm gon na listen to your lungs here your lungs "
        "are clear bilaterally i do n't hear any wheezes or crackles listen to your heart so on your heart "
        "exam i do still hear that grade two out of six systolic ejection murmur your diagnosis is a sprain"
    )
    assert _findings(turn) == [
        "listen to your lungs here your lungs are clear bilaterally i do n't hear any wheezes or crackles",
        "on your heart exam i do still hear that grade two out of six systolic ejection murmur",
    ]  # "listen to your heart so" names a system and finds nothing; the diagnosis moves on
    assert _findings("[doctor] on physical exam , let me listen to your heart and lungs .") == []
    run_on = (
        "[doctor] okay so let's do a physical exam i'm gon na listen to your lungs okay your lungs are clear "
        "bilaterally let me press here on your abdomen does that hurt and on your skin exam you have some "
        "erythema on the anterior side of the chest on the left side and this could be related to the "
        "radiation you had last month so on your lower extremities i appreciate no edema of the legs"
    )
    skin = (
        "on your skin exam you have some erythema on the anterior side of the chest on the left side and "
        "this could be related to the radiation you had last month so on your lower extremities i "
        "appreciate no"
    )
    assert _findings(run_on) == [
        "listen to your lungs okay your lungs are clear bilaterally",
        f"{skin} edema",
    ]  # "okay" after the opening words stays, "let me press" moves on, a cut at 40 words ends past "no"
    named = "[doctor] on physical exam , looking at your knee , on the x-ray and your exam , it's tender ."
    assert [f.name for f in facts_of(_transcript(named)).findings] == [
        "finding"
    ]  # a finding that names a study
    assert _findings("[doctor] let's do a physical exam . on your heart exam .") == []
    asked = (
        "[doctor] on physical exam i'm gon na look at the knee there is no redness there's no swelling i can "
        "appreciate a small amount of effusion when i move your left knee do you get any type of pain or "
        "is it just feel like normal and your pain is always on the right side of the knee and nowhere else"
    )
    assert _findings(asked) == [
        "look at the knee there is no redness there's no swelling i can appreciate a small amount of effusion"
    ]  # a question put during the exam ends the finding; its words are no finding


def test_a_pain_asked_about_as_the_clinician_examines_is_no_reported_symptom() -> None:
    pressed = (
        "[doctor] let's do a physical exam . does it hurt when i press on the inside of the knee\n[patient] "
    )
    assert _read(pressed + "yeah that hurts") == set()
    assert _read(pressed + "no") == set()
    assert (
        _read(
            "[doctor] let's do a physical exam . when i push on your belly ?\n[patient] it hurts a little ."
        )
        == set()
    )
    checked = "[doctor] let's do a physical exam . make sure you're not having any chest pain\n[patient] no"
    assert _read(checked) == {("chest pain", "denied", False)}  # a review of systems asked during the exam


def test_what_the_patient_says_of_themselves_stands_and_onsets_are_said_beside_the_symptom() -> None:
    tolerated = (
        "[doctor] your last treatment was just a few days ago but you've been able to tolerate the nausea\n"
        "[patient] i have n't had any nausea ."
    )
    assert _read(tolerated) == {("nausea", "denied", False)}  # not also reported from the clinician's words
    far = facts_of(
        _transcript(
            "[patient] my headache started about a week ago it feels like a dull pain in the back of my head "
            "and my ears get really red and hot and sometimes i feel a little bit dizzy"
        )
    )
    assert {(f.name, f.said) for f in far.symptoms} == {
        ("headache", "started about a week ago"),
        ("dizziness", None),
    }  # the onset is the headache's, said beside it, not the dizziness's
    assert _read("[patient] i just ca n't stop itching .") == {("itching", "reported", False)}
    unsure = (
        "[patient] maybe . i do n't think i've ever had heartburn , so i'm not sure what that feels like ."
    )
    assert _read(unsure) == set()  # unsure what the symptom is: neither denied nor reported
    assert _read("[patient] i'm not sure if i had a fever") == set()
    assert _read("[patient] i put my arms out and then my wrist started to hurt real bad") == {
        ("wrist pain", "reported", False)
    }
    warned = "[doctor] what i want you to watch for is any changes to your bowels you know severe diarrhea"
    assert _read(warned) == set()  # a warning of what may come


def test_studies_read_out_after_the_exam_are_quoted_with_what_they_found() -> None:
    def studies(text: str) -> list[str]:
        return [f.text for f in facts_of(_transcript(text)).findings if f.name == "study"]

    read = (
        "[doctor] okay . so i reviewed your right foot x-ray and i do n't see any evidence of osteomyelitis ."
    )
    assert studies(read) == [
        "so i reviewed your right foot x-ray and i do n't see any evidence of osteomyelitis."
    ]
    assert studies("[doctor] hey dragon , show me the chest x-ray .") == []  # a voice command
    assert studies("[doctor] i'm gon na send you up for an mri to take another look at this .") == []
    assert studies("[doctor] so assuming that the ultrasound is normal , we will cut it out .") == []


def test_how_severe_the_patient_rates_the_pain_is_quoted_with_its_question() -> None:
    def rated(text: str) -> list[tuple[str, tuple[int, ...]]]:
        return [(f.text, f.turns) for f in facts_of(_transcript(text)).severity]

    asked = (
        "[doctor] okay so on a scale of one to ten how severe is the pain\n[patient] gosh it's like a nine"
    )
    assert rated(asked) == [
        ('"okay so on a scale of one to ten how severe is the pain" "gosh it\'s like a nine"', (1, 2))
    ]
    assert rated("[doctor] nine out of 10 ?\n[patient] yeah .") == [('"nine out of 10" "yeah"', (1, 2))]
    own = "[patient] at first it was like three out of 10 , and it just worsened . now it's six out of 10 ."
    assert rated(own) == [
        ('"at first it was like three out of 10 and it just worsened now it\'s six out of 10"', (1,))
    ]
    retracted = (
        "[patient] i'm sorry it's a six out of ten without ibuprofen and it goes down to a one . the end"
    )
    assert rated(retracted) == [
        ("\"i'm sorry it's a six out of ten without ibuprofen and it goes down to a one\"", (1,))
    ]  # the rest of the score's sentence is quoted with it
    assert (
        rated("[doctor] on a scale of one to ten how severe is the pain\n[patient] it comes and goes") == []
    )
    assert rated("[patient] i got it out of the car") == []  # no score
    texts = [
        s.text for s in transcript_statements(_transcript(asked), facts_of(_transcript(asked)))["Subjective"]
    ]
    assert any(t.startswith("Severity rated, as said:") for t in texts)


def test_a_prescribing_is_a_plan_whatever_if_came_earlier_in_the_turn() -> None:
    turn = (
        "[doctor] see if we can get you hydrated what i'm gon na do is i'm gon na prescribe you ibuprofen "
        "eight hundred milligrams you can take that as needed"
    )
    meds = facts_of(_transcript(turn)).medications
    assert [(m.name, m.status, m.dose) for m in meds] == [("ibuprofen", "planned", "800 mg")]
    wished = facts_of(_transcript("[patient] i wish i had some advil with me")).medications
    assert wished == []  # without a prescribing beside it, a hypothetical stays no medication


def test_a_drugs_status_comes_from_the_words_around_it() -> None:
    def status(text: str) -> list[tuple[str, str, str | None]]:
        return [(m.name, m.status, m.dose) for m in facts_of(_transcript(text)).medications]

    assert status("[doctor] order meloxicam 15 milligrams once a day") == [("meloxicam", "planned", "15 mg")]
    assert status("[doctor] i know we have you on the prozac 20 mg a day") == [("prozac", "taking", "20 mg")]
    assert status("[doctor] how is your metformin going") == [("metformin", "taking", None)]
    assert status("[doctor] she had a reaction to dexamethasone that made her heart race") == [
        ("dexamethasone", "named", None)
    ]  # neither taken nor planned by the words: said as named
    assert status("[patient] i did not want any steroid") == []
    assert status("[doctor] your potassium is 3.9 and your alkaline phosphatase was 156") == []  # labs
    assert status("[patient] i am allergic to percocet") == []  # an allergy, not a medication
    switch = "[doctor] i'm gon na stop the norvasc and we'll put you on hydrochlorothiazide 10 milligrams"
    assert status(switch) == [("norvasc", "stopping", None), ("hydrochlorothiazide", "planned", "10 mg")]
    assert status("[patient] i was on lisinopril before") == [("lisinopril", "stopped", None)]
    assert status("[doctor] did she give you some prednisone ?") == []
    stay = "[doctor] i do n't see any fracture so i'd like you to stay on two tylenol five hundred milligrams"
    assert status(stay) == [("tylenol", "continuing", "500 mg")]  # a "no" far before the drug is another's
    hoped = "[doctor] with their help we can hopefully eventually get you off that lisinopril"
    assert status(hoped) == []  # a stop hoped for is no stop
    assert status("[patient] i used to be on an insulin pump") == [("insulin", "stopped", None)]
    assert status("[patient] i tried tylenol a few times but it did n't work , so i stopped .") == [
        ("tylenol", "stopped", None)
    ]
    assert status("[doctor] yeah my pcp just started me on metformin") == [("metformin", "taking", None)]
    assert status("[doctor] i'm also gon na give you a lidocaine swish and swallow") == [
        ("lidocaine", "planned", None)
    ]
    assert status("[unknown] we'll get you some motrin 600 milligrams") == [("motrin", "planned", "600 mg")]
    untagged = "[unknown] the motrin is in the cabinet"
    assert status(untagged) == [("motrin", "named", None)]  # taken only if said so
    kept = "[doctor] please continue your lisinopril 10 milligrams a day . we're gon na add the carvedilol"
    assert status(kept) == [("lisinopril", "continuing", "10 mg"), ("carvedilol", "planned", None)]
    sugars = "[doctor] we will continue you on the metformin i do want you to check your blood sugars daily"
    assert [(m.name, m.status, m.frequency) for m in facts_of(_transcript(sugars)).medications] == [
        ("metformin", "continuing", None)
    ]  # "daily" is the checking's, said after the next instruction
    monitor = "[doctor] we will continue to monitor that and i think you will tolerate the aldactone well"
    assert status(monitor) == [("aldactone", "planned", None)]  # "continue" said of the monitoring
    assert status("[doctor] i do want to add aldactone twelve . five milligrams daily") == [
        ("aldactone", "planned", "12.5 mg")
    ]  # speech recognition's decimal
    both = (
        "[patient] i'm on antibiotics .\n[doctor] how is the antibiotic ?\n[patient] i take the antibiotic ."
    )
    assert status(both) == [("antibiotic", "taking", None)]  # one drug, whatever its number


def test_an_unpunctuated_exam_turn_gives_each_systems_findings() -> None:
    turn = (
        "[doctor] okay let's go ahead and do a quick physical exam i'm gon na call out my findings "
        "so on your heart exam i do appreciate a three out of six systolic ejection murmur at the left base "
        "on your lung exam your lungs are clear to auscultation bilaterally so that means they are fine "
        "and i want you to keep using the inhaler every day"
    )
    findings = [f.text for f in facts_of(_transcript(turn)).findings]
    assert findings == [
        "on your heart exam i do appreciate a three out of six systolic ejection murmur at the left base",
        "on your lung exam your lungs are clear to auscultation bilaterally",
    ]


def test_allergies_are_reactions_to_something_or_none_quoted_around_the_word() -> None:
    def allergies(text: str) -> list[str]:
        return [a.text for a in facts_of(_transcript(text)).allergies]

    assert allergies("[patient] well i am allergic to penicillin it gives me hives") == [
        "well i am allergic to penicillin it gives me hives"
    ]
    assert allergies("[patient] no known drug allergies") == ["no known drug allergies"]
    assert allergies("[doctor] this is an allergic reaction in your lungs every time you move hay") == []
    assert allergies("[patient] congestion from fall pollen and allergies") == []
    long_turn = (
        "[doctor] " + "so we went over a lot today " * 4 + "you're allergic to sulfa right " + "ok " * 20
    )
    [quoted] = allergies(long_turn)
    assert "allergic to sulfa" in quoted and len(quoted.split()) < 20  # the words around it, not the turn


def test_doses_and_intervals_as_said_and_drugs_without_a_stem() -> None:
    def said(text: str) -> list[tuple[str, str | None, str | None]]:
        return [(m.name, m.dose, m.frequency) for m in facts_of(_transcript(text)).medications]

    assert said("[doctor] order ultram fifty milligrams every four to six hours as needed") == [
        ("ultram", "50 mg", "every 4 to 6 hours as needed")
    ]
    assert said("[doctor] put you on metformin a thousand milligrams twice a day") == [
        ("metformin", "1000 mg", "twice a day")
    ]
    assert said("[doctor] let's start flomax zero point four milligrams once a day") == [
        ("flomax", "0.4 mg", "once a day")
    ]
    assert spoken_numbers("ninety eight point six")[-1] == 98.6


def test_a_dose_said_after_the_next_drug_is_not_this_ones() -> None:
    said = "[doctor] ten milligrams of norvasc daily and carvedilol twenty five milligrams twice a day"
    meds = {m.name: (m.dose, m.frequency) for m in facts_of(_transcript(said)).medications}
    assert meds == {"norvasc": ("10 mg", "daily"), "carvedilol": ("25 mg", "twice a day")}
    meds = {
        m.name: (m.dose, m.frequency)
        for m in facts_of(_transcript("[patient] i take metformin and lisinopril 20 mg daily")).medications
    }
    assert meds["metformin"] == (None, None) and meds["lisinopril"] == ("20 mg", "daily")
    raised = "[doctor] her lisinopril had- has also been increased up to 10 milligrams daily in march ."
    assert [m.dose for m in facts_of(_transcript(raised)).medications] == ["10 mg"]


def test_a_question_under_the_patients_tag_is_no_report_and_its_answer_is_uncertain() -> None:
    read = _read("[patient] have you experienced any numbness in your arm\n[doctor] no numbness or tingling")
    assert ("numbness", "reported", False) not in read
    assert {("numbness", "denied", True), ("tingling", "denied", True)} <= read
    assert not any(status == "denied" and not uncertain for _, status, uncertain in read)


def test_the_answer_schema_takes_turn_keys() -> None:
    transcript = _transcript()
    keys = transcript.keys()
    assert keys and all(re.match(KEY_PATTERN, key) for key in keys)
    assert transcript.keys()["T4"] == f"{REF}#turn-4"


def test_spoken_numbers() -> None:
    assert {20.0, 25.0} <= set(spoken_numbers("twenty five milligrams"))
    assert 120.0 in spoken_numbers("one twenty over eighty") and 7.2 in spoken_numbers("a1c of 7.2")


def _record(**kwargs: Any) -> Any:
    return record_from_bundle_json(bundle("e1", VISIT, **kwargs))


def _verifier(record: Any) -> tuple[Verifier, Any]:
    found = asyncio.run(find_transcript(record, RULES, encounter=None))
    assert found.transcript is not None
    evidence = WithTranscript(RecordEvidence(record), [(found.transcript, facts_of(found.transcript))])
    return Verifier(evidence), found.transcript


def _rules(
    verifier: Verifier, text: str, turns: list[int], ref: str = "DocumentReference/tx-e1"
) -> list[str]:
    cites = [f"{ref}#turn-{n}" for n in turns]
    note = NoteDraft(
        kind="soap",
        sections=[Section(title="Subjective", statements=[Statement(text=text, citations=cites)])],
    )
    return [v.rule for v in verifier.verify(note).violations]


def test_the_verifier_reads_turns_numbers_negation_and_answers() -> None:
    verifier, transcript = _verifier(_record())
    facts = facts_of(transcript)
    composed = transcript_statements(transcript, facts)
    draft = NoteDraft(
        kind="soap", sections=[Section(title=k, statements=v) for k, v in composed.items() if v]
    )
    assert verifier.verify(draft).passed  # every composed statement passes its own checks
    assert _rules(verifier, "Denies fever and chills.", [3, 4]) == []  # "no." read with its question
    assert "negation_contradicted" in _rules(verifier, "Reports fever and chills.", [3, 4])
    assert "negation_contradicted" in _rules(verifier, "Denies knee pain.", [2])
    assert "number_unsupported" in _rules(verifier, "Takes ibuprofen 800 mg twice a day.", [6])
    assert _rules(verifier, "Takes ibuprofen 400 mg twice a day.", [6]) == []
    assert "ungrounded" in _rules(verifier, "Takes ibuprofen 400 mg twice a day.", [6, 3])  # unrelated turn
    assert "symptom_unsupported" in _rules(verifier, "Knee pain with vomiting.", [2])
    assert "citation_unresolved" in _rules(verifier, "Knee pain.", [99])
    assert "citation_unresolved" in _rules(verifier, "Knee pain.", [2], "DocumentReference/other")
    assert "uncited_claim" in _rules(verifier, "Knee pain for two weeks.", [])


def test_without_a_transcript_subjective_says_so_and_passes_the_verifier() -> None:
    verifier, _ = _verifier(_record())
    composed = transcript_statements(None, TranscriptFacts())
    draft = NoteDraft(kind="soap", sections=[Section(title=k, statements=v) for k, v in composed.items()])
    assert [s.text for s in draft.sections[0].statements] == [NO_TRANSCRIPT]
    assert verifier.verify(draft).violations == []  # a statement about the record needs no citation


def test_a_denial_of_blood_in_the_urine_is_grounded_though_both_words_are_generic() -> None:
    transcript = _transcript("[doctor] any blood in your urine ?\n[patient] no .")
    facts = facts_of(transcript)
    composed = transcript_statements(transcript, facts)
    assert [s.text for s in composed["Subjective"]] == ["Denies blood in urine."]
    evidence = WithTranscript(RecordEvidence(_record()), [(transcript, facts)])
    draft = NoteDraft(kind="soap", sections=[Section(title="Subjective", statements=composed["Subjective"])])
    assert Verifier(evidence).verify(draft).passed


def test_transcripts_are_found_by_encounter_and_another_patients_is_refused() -> None:
    record = _record()
    found = asyncio.run(find_transcript(record, RULES, encounter="enc-e1"))
    assert found.transcript is not None and found.transcript.ref == "DocumentReference/tx-e1"
    with pytest.raises(InputError, match="not an encounter of Patient/aci-patient"):
        asyncio.run(find_transcript(record, RULES, encounter="someone-elses"))
    foreign = record_from_bundle_json(
        bundle("e2", VISIT, transcript_encounter="Encounter/of-another-patient")
    )
    refused = asyncio.run(find_transcript(foreign, RULES, encounter=None))
    assert refused.transcript is None
    assert refused.refused == [
        ("DocumentReference/tx-e2", "Encounter/of-another-patient is not an encounter of Patient/aci-patient")
    ]


def test_bad_bytes_and_huge_transcripts_are_read_with_what_was_done_said() -> None:
    latin = record_from_bundle_json(bundle("e3", "[patient] caf\xe9 fever\n".encode("latin-1")))
    t = asyncio.run(find_transcript(latin, RULES, encounter=None)).transcript
    assert t is not None and "not UTF-8" in t.problems[0] and t.turns[0].speaker == "patient"
    small = TranscriptRules(RULES.codes, 60, 1000)
    huge = asyncio.run(find_transcript(_record(), small, encounter=None)).transcript
    assert huge is not None and "byte cap" in huge.problems[0] and len(huge.turns) < len(VISIT.splitlines())
    statements = transcript_statements(huge, facts_of(huge))["Subjective"]
    assert any(
        s.text.startswith("The visit transcript: the transcript is over the 60-byte cap") for s in statements
    )
    url = record_from_bundle_json(bundle("e4", VISIT, url="Binary/tx"))
    offline = asyncio.run(find_transcript(url, RULES, encounter=None)).transcript
    assert offline is not None and "no FHIR server" in offline.problems[0]
    raw = bundle("e5", VISIT)
    raw["entry"][2]["resource"]["content"][0]["attachment"]["data"] = base64.b64encode(b"\x00\xff").decode()
    assert (
        asyncio.run(find_transcript(record_from_bundle_json(raw), RULES, encounter=None)).transcript
        is not None
    )
