import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from tests.conftest import CASES
from transforms.form_presets import PRESETS, FormPayloadError, parse_form_post
from transforms.submissions import parse_submission

FORMS = CASES / "forms"


def load_body(name):
    """The body as the HTTP layer decodes it: JSON, or urlencoded pairs."""
    text = (FORMS / name).read_text(encoding="utf-8")
    return json.loads(text) if name.endswith(".json") else parse_qsl(text.strip())


def lead_from(preset, body, submission_rules):
    submission = parse_form_post(preset, body)
    lead = parse_submission(submission.record, "form", submission_rules,
                            default_form=submission.form_name)
    return submission, lead


@pytest.mark.parametrize(
    ("preset", "case", "expected"),
    [
        pytest.param(
            "tilda", "tilda.urlencoded.txt",
            {"name": "Ольга Смирнова", "phones": ["+79123456789"],
             "emails": ["olga.smirnova@example.ru"],
             "message": "Перезвоните, пожалуйста, после 18:00",
             "raw_source": {"utm_source": "yandex", "utm_medium": "cpc",
                            "utm_campaign": "autumn_sale", "form": "Обратный звонок"},
             "lead_id": "form:Обратный звонок:4731502:7823412"},
            id="tilda-urlencoded-utm-from-cookie",
        ),
        pytest.param(
            "typeform", "typeform.json",
            {"name": "Марина Волкова", "phones": ["+79031234567"],
             "emails": ["marina.volkova@gmail.com"], "company": "ООО «Северный ветер»",
             "message": "Нужна CRM на 5 менеджеров, сейчас ведём заявки в Google Таблице.",
             "raw_source": {"utm_source": "instagram", "utm_medium": "social",
                            "form": "Заявка на консультацию"},
             "lead_id": "form:Заявка на консультацию:8v2k0t1x9q3m7n5b8v2k0t1x9q3m7n5b",
             "received_at": datetime(2026, 11, 23, 10, 1, 47, tzinfo=UTC)},
            id="typeform-refs-titles-typed-answers-hidden-utm",
        ),
        pytest.param(
            "google_forms", "google_forms.json",
            {"name": "Игорь Петров", "phones": ["+79037654321"],
             "emails": ["igor.petrov@mail.ru"],
             "message": "Сколько стоит доставка шкафа в Казань?",
             "raw_source": {"source": "Авито", "form": "Заявка на доставку"},
             "lead_id": "form:Заявка на доставку:"
                        "2_ABaOnud3kQ8wz1Xh0pL5sY7mN2vB4cR9tE6uI0oP3aS8dF1gH",
             "received_at": datetime(2026, 11, 23, 11, 5, 11, 482000, tzinfo=UTC)},
            id="google-forms-named-values",
        ),
        pytest.param(
            "cf7", "cf7.json",
            {"name": "Анна Кузнецова", "phones": ["+79991112233"],
             "emails": ["anna.k@firma-stroy.ru"],
             "message": "Нужен расчёт отделки офиса 40 м², Екатеринбург.",
             "raw_source": {"utm_source": "google", "utm_medium": "cpc",
                            "utm_campaign": "remont_ofisa"}},
            id="cf7-your-prefix-and-generated-tel-name",
        ),
        pytest.param(
            "webflow", "webflow.json",
            {"name": "Дмитрий Орлов", "phones": ["+79215551234"],
             "emails": ["d.orlov@company.com"],
             "message": "Хотим обсудить редизайн сайта до конца квартала.",
             "raw_source": {"utm_source": "vk", "utm_medium": "social", "form": "Contact Us"},
             "lead_id": "form:Contact Us:6741a9b3c2d1e0f4a5b6c7d8"},
            id="webflow-v2",
        ),
        pytest.param(
            "tally", "tally.json",
            {"name": "Павел Соколов", "phones": ["+79161234567"],
             "emails": ["pavel.sokolov@retail-group.ru"],
             "message": "Три магазина, хотим видеть заявки с сайта в одной таблице.",
             "raw_source": {"utm_source": "telegram", "utm_campaign": "demo_november",
                            "form": "Запись на демо"},
             "lead_id": "form:Запись на демо:2wgx4n"},
            id="tally-typed-fields-hidden-utm",
        ),
        pytest.param(
            "generic", "generic_nested.json",
            {"name": "Сергей Лебедев", "phones": ["+79120001122"],
             "emails": ["sergey.lebedev@example.com"],
             "message": "Интересует поставка 200 коробок ежемесячно",
             "raw_source": {"utm_source": "dzen", "utm_medium": "article",
                            "form": "Квиз на лендинге"},
             "lead_id": "form:Квиз на лендинге:evt_81723"},
            id="generic-nested-json",
        ),
    ],
)
def test_a_realistic_post_becomes_the_lead_a_user_expects(preset, case, expected,
                                                          submission_rules):
    submission, lead = lead_from(preset, load_body(case), submission_rules)
    assert not submission.is_test
    assert {key: getattr(lead, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("preset", "case", "submission_id", "form_name"),
    [
        pytest.param("tilda", "tilda.urlencoded.txt", "4731502:7823412", "Обратный звонок",
                     id="tilda-tranid"),
        pytest.param("typeform", "typeform.json", "8v2k0t1x9q3m7n5b8v2k0t1x9q3m7n5b",
                     "Заявка на консультацию", id="typeform-token"),
        pytest.param("google_forms", "google_forms.json",
                     "2_ABaOnud3kQ8wz1Xh0pL5sY7mN2vB4cR9tE6uI0oP3aS8dF1gH",
                     "Заявка на доставку", id="google-forms-script-response-id"),
        pytest.param("cf7", "cf7.json", "", "", id="cf7-has-no-id"),
        pytest.param("webflow", "webflow.json", "6741a9b3c2d1e0f4a5b6c7d8", "Contact Us",
                     id="webflow-payload-id"),
        pytest.param("tally", "tally.json", "2wgx4n", "Запись на демо", id="tally-response-id"),
        pytest.param("generic", "generic_nested.json", "evt_81723", "Квиз на лендинге",
                     id="generic-top-level-id"),
    ],
)
def test_the_providers_own_submission_id_and_form_name(preset, case, submission_id, form_name):
    submission = parse_form_post(preset, load_body(case))
    assert (submission.submission_id, submission.form_name) == (submission_id, form_name)


def test_a_redelivered_post_gets_the_same_lead_id(submission_rules):
    body = load_body("typeform.json")
    _, first = lead_from("typeform", body, submission_rules)
    body["event_id"] = "01JDB9RETRY000000000000000"
    _, again = lead_from("typeform", body, submission_rules)
    assert first.lead_id == again.lead_id


def test_cf7_post_without_an_id_gets_a_content_id(submission_rules):
    _, lead = lead_from("cf7", load_body("cf7.json"), submission_rules)
    assert lead.lead_id.startswith("form:form:")


def test_tally_choice_ids_become_the_option_texts_the_visitor_saw():
    record = parse_form_post("tally", load_body("tally.json")).record
    assert record["Тариф"] == "Бизнес"
    assert record["Что подключить"] == "Airtable, Google Таблицы"
    assert not any(label.startswith("Что подключить (") for label in record)


def test_typeform_choice_and_yes_no_answers_are_readable():
    record = parse_form_post("typeform", load_body("typeform.json")).record
    assert record["Что вас интересует"] == "Внедрение CRM"
    assert record["Можно позвонить в WhatsApp"] == "yes"


def test_google_forms_checkbox_answers_are_joined():
    record = parse_form_post("google_forms", load_body("google_forms.json")).record
    assert record["Какие услуги интересуют"] == "Доставка, Сборка мебели"
    assert "Комментарий для курьера" not in record


@pytest.mark.parametrize(
    ("preset", "body", "expected"),
    [
        pytest.param("generic",
                     [("name", "Ира"), ("services", "Монтаж"), ("services", "Доставка")],
                     {"name": "Ира", "services": "Монтаж, Доставка"},
                     id="generic-repeated-names-joined"),
        pytest.param("tilda", [("Phone", "+79123456789"), ("Email", "a@b.ru"), ("Email", "c@d.ru")],
                     {"Phone": "+79123456789", "Email": "a@b.ru, c@d.ru"},
                     id="tilda-repeated-emails-joined"),
        pytest.param("cf7",
                     [("_wpcf7", "125"), ("_wpcf7_unit_tag", "wpcf7-f125-p10-o1"),
                      ("your-name", "Олег"), ("tel-301", "89001234567"),
                      ("textarea-12", "Нужна консультация"),
                      ("g-recaptcha-response", "03AFcWeA...")],
                     {"name": "Олег", "phone": "89001234567", "message": "Нужна консультация"},
                     id="cf7-direct-post-drops-service-fields"),
    ],
)
def test_form_pairs(preset, body, expected):
    assert parse_form_post(preset, body).record == expected


def test_webflow_v1_shape_is_still_read(submission_rules):
    body = {"name": "Sample Form", "site": "62749158efef318abc8d5a0f",
            "data": {"name": "Some One", "email": "Some.One@Home.com", "phone": "8 912 345 67 89"},
            "d": "2022-09-14T12:35:16.117Z", "_id": "6321ca84df3949bfc6752327"}
    submission, lead = lead_from("webflow", body, submission_rules)
    assert submission.submission_id == "6321ca84df3949bfc6752327"
    assert (lead.emails, lead.phones) == (["some.one@home.com"], ["+79123456789"])
    assert lead.received_at == datetime(2022, 9, 14, 12, 35, 16, 117000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("preset", "body"),
    [
        # Webflow's documented example: the name in two fields, the phone a number
        pytest.param("webflow", {"triggerType": "form_submission", "payload": {
            "name": "Contact Us", "id": "6321ca84df3949bfc6752327",
            "data": {"First Name": "Zaphod", "Last Name": "Beeblebrox",
                     "email": "zaphod@heartofgold.ai", "Phone Number": 15550000000}}},
            id="webflow-first-last-name"),
        pytest.param("tilda", [("Name", "Zaphod"), ("Surname", "Beeblebrox"),
                               ("Phone", "+1 555 000 0000"), ("tranid", "1:2")],
                     id="tilda-name-surname"),
        pytest.param("generic", {"name": {"first": "Zaphod", "last": "Beeblebrox"},
                                 "phone": "+15550000000"}, id="jotform-first-last"),
    ],
)
def test_a_name_in_two_fields_is_the_full_name(submission_rules, preset, body):
    _, lead = lead_from(preset, body, submission_rules)
    assert lead.name == "Zaphod Beeblebrox"


def test_tilda_utm_fields_on_the_form_win_over_the_cookie():
    body = [("Phone", "+79123456789"), ("utm_source", "vk"),
            ("COOKIES", "TILDAUTM=utm_source%3Dyandex%7C%7C%7Cutm_medium%3Dcpc")]
    record = parse_form_post("tilda", body).record
    assert (record["utm_source"], record["utm_medium"]) == ("vk", "cpc")
    assert "COOKIES" not in record


@pytest.mark.parametrize(
    ("preset", "body"),
    [
        pytest.param("tilda", [("test", "test")], id="tilda-webhook-connect-ping"),
        pytest.param("tilda", {"test": "test"}, id="tilda-ping-as-json"),
        pytest.param("typeform",
                     {"event_id": "LtWXD3crgy", "event_type": "form_response",
                      "form_response": {"form_id": "lT4Z3j",
                                        "token": "a3a12ec67a1365927098a606107fac15",
                                        "answers": [{"type": "text", "text": "Laura",
                                                     "field": {"id": "SMEUb7VJz92Q",
                                                               "type": "short_text"}}]}},
                     id="typeform-documented-example-payload"),
    ],
)
def test_a_providers_test_ping_is_recognised(preset, body):
    assert parse_form_post(preset, body).is_test


def test_a_tilda_form_with_a_field_called_test_is_a_lead():
    body = [("test", "test"), ("Phone", "+79123456789"), ("tranid", "1:2")]
    assert not parse_form_post("tilda", body).is_test


@pytest.mark.parametrize(
    ("preset", "body", "message"),
    [
        pytest.param("typeform", {"event_id": "x", "event_type": "form_response"},
                     "expected form_response.answers in a Typeform payload",
                     id="typeform-without-answers"),
        pytest.param("typeform", {"event_type": "form_response_partial", "form_response": {}},
                     "expected a Typeform form_response event, got event_type "
                     "'form_response_partial'", id="typeform-partial-response"),
        pytest.param("typeform", [("name", "Ира")],
                     "expected a JSON object from Typeform, got form fields",
                     id="typeform-sent-as-form-fields"),
        pytest.param("tally", {"eventType": "FORM_RESPONSE", "data": {}},
                     "expected data.fields in a Tally payload", id="tally-without-fields"),
        pytest.param("tally", {"data": {"fields": ["Имя"]}},
                     "expected each field in Tally data.fields to be an object",
                     id="tally-field-not-an-object"),
        pytest.param("webflow", {"triggerType": "form_submission", "payload": {"name": "x"}},
                     "expected payload.data (the form's fields) in a Webflow payload",
                     id="webflow-without-data"),
        pytest.param("webflow", {"triggerType": "site_publish", "payload": {}},
                     "expected a Webflow form_submission event, got triggerType 'site_publish'",
                     id="webflow-other-event"),
        pytest.param("google_forms", {"values": ["23.11.2026", "Игорь"]},
                     "expected namedValues in a Google Forms payload (see the README script)",
                     id="google-forms-values-only"),
        pytest.param("generic", [{"name": "a"}, {"name": "b"}],
                     "expected form fields or a JSON object from a form, got a list of 2 items",
                     id="generic-json-array"),
        pytest.param("generic", None,
                     "expected form fields or a JSON object from a form, got nothing",
                     id="generic-empty-body"),
        pytest.param("cf7", {"_wpcf7": "125", "your-name": ""}, "the post has no form fields",
                     id="cf7-only-service-fields"),
    ],
)
def test_malformed_post_says_what_is_wrong(preset, body, message):
    with pytest.raises(FormPayloadError) as error:
        parse_form_post(preset, body)
    assert str(error.value) == message


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown form preset 'jotform'; expected one of tilda"):
        parse_form_post("jotform", {})


def test_presets_are_the_ones_config_documents():
    assert PRESETS == ("tilda", "typeform", "google_forms", "cf7", "webflow", "tally", "generic")
