"""The benchmark's matchers give one contact id per record, in order."""

from datetime import UTC, datetime

from dedupe_quality import exact_clusters, leadhub_clusters, normalize_all

from transforms.records import ParsedLead

AT = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def lead(lead_id, phones=(), emails=(), name="Ирина Соколова"):
    return ParsedLead(
        lead_id=lead_id,
        channel="form",
        received_at=AT,
        name=name,
        phones=list(phones),
        emails=list(emails),
    )


RECORDS = [
    lead("a", phones=["8 912 345-67-89"]),
    lead("b", phones=["+7(912)3456789"], emails=["sokolova.i@mail.ru"]),
    lead("c", emails=["SOKOLOVA.I@MAIL.RU"]),
    lead("d", phones=["12"]),  # nothing to reach the person: rejected
    lead("e", phones=["+7 903 111-22-33"], name="Пётр Лебедев"),
]


def test_leadhub_puts_one_persons_leads_in_one_contact_and_a_rejected_one_alone():
    clusters = leadhub_clusters(RECORDS)
    assert len(clusters) == len(RECORDS)
    assert clusters[0] == clusters[1] == clusters[2]
    assert len({clusters[0], clusters[3], clusters[4]}) == 3


def test_the_exact_rule_joins_leads_through_a_shared_phone_or_email():
    clusters = exact_clusters(normalize_all(RECORDS))
    assert clusters[0] == clusters[1] == clusters[2]
    assert len({clusters[0], clusters[3], clusters[4]}) == 3


def test_leadhub_reports_each_lead_as_it_is_matched():
    seen = []
    leadhub_clusters(RECORDS, on_matched=seen.append)
    assert seen == [1, 2, 3, 4, 5]
