"""Which template a form notification is, and how each layout is read."""

import pytest

from transforms.notification_presets import (
    GENERIC,
    NotificationPreset,
    choose_preset,
    form_text,
    notification_pairs,
)


@pytest.fixture(scope="module")
def presets(settings):
    return settings.mail_rules().presets


@pytest.mark.parametrize(
    ("sender", "subject", "preset"),
    [
        pytest.param("robot@tilda.ws", "Новая заявка с сайта", "tilda", id="tilda-by-sender"),
        pytest.param("noreply@tilda.cc", "Заявка", "tilda", id="tilda-second-domain"),
        pytest.param("wordpress@site.ru", 'Окна "Вопрос"', "cf7", id="cf7-by-wordpress-sender"),
        pytest.param(
            "wordpress@site.ru",
            'New message from "Окна"',
            "elementor",
            id="elementor-subject-wins-over-wordpress-sender",
        ),
        pytest.param(
            "email@stroydvor.ru", "Заявка с сайта", "elementor", id="elementor-by-default-sender"
        ),
        pytest.param(
            "owner@gmail.com",
            "New response: Заказ мебели",
            "google_forms",
            id="google-forms-by-subject-from-owner-account",
        ),
        pytest.param(
            "forms-receipts-noreply@google.com",
            "Ваш ответ",
            "google_forms",
            id="google-forms-by-sender",
        ),
        pytest.param(
            "noreply@forms.yandex.ru",
            "Новый ответ",
            "yandex_forms",
            id="yandex-forms-by-sender-before-google-subject",
        ),
        pytest.param(
            "info@okna.ru",
            "okna.ru: заполнена web-форма [3] Замер",
            "bitrix",
            id="bitrix-web-form-by-subject",
        ),
        pytest.param(
            "info@okna.ru",
            "Окна: Сообщение из формы обратной связи",
            "bitrix",
            id="bitrix-feedback-by-subject",
        ),
        pytest.param(
            "noreply@shop.ru", "Новая заявка с сайта", "generic", id="unknown-site-is-generic"
        ),
        pytest.param(
            "robot@tilda.ws.example.com", "Заявка", "generic", id="lookalike-domain-is-generic"
        ),
        pytest.param(
            "olga@mail.ru",
            'Re: New message from "Окна"',
            "generic",
            id="reply-to-a-notification-is-generic",
        ),
    ],
)
def test_preset_is_chosen_by_sender_or_subject(presets, sender, subject, preset):
    assert choose_preset(sender, subject, presets).name == preset


def test_no_presets_configured_means_generic():
    assert choose_preset("robot@tilda.ws", "Заявка", []) is GENERIC


GOOGLE = NotificationPreset(
    name="google_forms",
    layout="question_then_answer",
    start_after=["new response to*"],
    footer=["view all responses*"],
    field_aliases={"name": ["как вас зовут"]},
)
BITRIX = NotificationPreset(
    name="bitrix",
    layout="question_then_answer",
    footer=["для просмотра воспользуйтесь ссылкой*"],
    skip_lines=["*/bitrix/admin/*"],
)


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        pytest.param(
            'New response to "Замер"\n\nКак вас зовут? *\nОльга\n\nТелефон\n+7 921 555-44-33\n',
            [("name", "Ольга"), ("Телефон", "+7 921 555-44-33")],
            id="paragraphs-question-marks-dropped-preset-alias-applied",
        ),
        pytest.param(
            "Имя\nОльга\nОткуда узнали?\n\nТелефон\n8 921 555-44-33\n",
            [("Имя", "Ольга"), ("Телефон", "8 921 555-44-33")],
            id="unanswered-question-does-not-shift-answers",
        ),
        pytest.param(
            "Имя\nОльга\nУдобное время\nпосле 18:00\nГород\nПсков",
            [("Имя", "Ольга"), ("Удобное время", "после 18:00"), ("Город", "Псков")],
            id="html-rows-without-blank-lines-alternate",
        ),
        pytest.param(
            "Name: John Smith\nEmail: john@example.com\nView all responses in Google Forms.",
            [("Name", "John Smith"), ("Email", "john@example.com")],
            id="label-value-lines-still-read",
        ),
    ],
)
def test_question_then_answer(text, pairs):
    assert notification_pairs(text, GOOGLE) == pairs


def test_bitrix_questions_underlined_with_stars():
    text = (
        "site.ru\n\nЗаполнена web-форма: [3] Замер\n-----------\n\n"
        "Дата - 15.04.2024\nПользователь - [0] не авторизован\n\n"
        "Имя посетителя\n*********\nСергей\n\n"
        "E-mail\n*********\n\n"
        "Комментарий\n*********\nПерезвоните после 18:00,\nлучше в выходные.\n\n"
        "Для просмотра воспользуйтесь ссылкой:\n"
        "http://site.ru/bitrix/admin/form_result_view.php?RESULT_ID=1\n"
    )
    pairs = dict(notification_pairs(text, BITRIX))
    assert pairs["Имя посетителя"] == "Сергей"
    assert pairs["Комментарий"] == "Перезвоните после 18:00,\nлучше в выходные."
    assert pairs["E-mail"] == ""
    assert pairs["Заполнена web-форма"] == "[3] Замер"
    assert "referrer" not in pairs  # the admin's link is not the visitor's page


def test_bitrix_feedback_message_below_its_label():
    text = "Автор: Иван\nE-mail автора: ivan@mail.ru\n\nТекст сообщения:\nПривет\nЕщё строка\n"
    assert notification_pairs(text, BITRIX)[-1] == ("Текст сообщения", "Привет\nЕщё строка")


ELEMENTOR = NotificationPreset(name="elementor", footer=["---"])
ELEMENTOR_MAIL = (
    "Имя: Алексей\nТелефон: +7 912 345-67-89\n\n---\n\nDate: 12.04.2024\nTime: 15:42\n"
    "Page URL: https://stroydvor.ru/krovlya/\nRemote IP: 95.24.17.203\nPowered by: Elementor"
)


def test_footer_lines_are_read_but_are_not_the_form():
    pairs = dict(notification_pairs(ELEMENTOR_MAIL, ELEMENTOR))
    assert pairs["Page URL"] == "https://stroydvor.ru/krovlya/"
    assert pairs["Телефон"] == "+7 912 345-67-89"
    assert "Remote IP" not in form_text(ELEMENTOR_MAIL, ELEMENTOR)


def test_tilda_request_details_link_is_the_page():
    tilda = NotificationPreset(
        name="tilda",
        footer=["request details*"],
        field_aliases={"message": ["textarea"], "submission_id": ["transaction id"]},
    )
    text = (
        "Name: Света\nTextarea: Ремонт ванной\nсмета до конца месяца\n\nRequest details:\n"
        "Transaction ID: 5512093:1712569287\nBlock ID: rec612345678\nForm Name: Расчёт\n"
        "https://uyutdom.ru/vannaya\n"
    )
    pairs = dict(notification_pairs(text, tilda))
    assert pairs["message"] == "Ремонт ванной\nсмета до конца месяца"
    assert pairs["submission_id"] == "5512093:1712569287"
    assert pairs["Form Name"] == "Расчёт"
    assert pairs["referrer"] == "https://uyutdom.ru/vannaya"


YANDEX = NotificationPreset(
    name="yandex_forms",
    label_patterns=[r"^ответ на вопрос\s*«(?P<label>[^»]+)»\s*:?\s*(?P<value>.*)$"],
)


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        pytest.param(
            "Ответ на вопрос «Ваше имя»: Марина\nОтвет на вопрос «Время»: 10:00–12:00",
            [("Ваше имя", "Марина"), ("Время", "10:00–12:00")],
            id="answer-to-question-wrapper",
        ),
        pytest.param(
            "Ответ на вопрос «Комментарий»:\nПотолки в две комнаты",
            [("Комментарий", "Потолки в две комнаты")],
            id="answer-on-the-line-below",
        ),
        pytest.param(
            "Ваше имя: Марина\nТелефон: 8 903 765-43-21",
            [("Ваше имя", "Марина"), ("Телефон", "8 903 765-43-21")],
            id="plain-question-colon-answer",
        ),
    ],
)
def test_yandex_forms_lines(text, pairs):
    assert notification_pairs(text, YANDEX) == pairs
