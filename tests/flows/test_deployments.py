"""The Prefect flows prefect.yaml deploys, on a real (temporary) Prefect API:
a run's summary is a table artifact; a run that cannot work ends Failed with
the clear message, not a traceback."""

from __future__ import annotations

import json

from prefect.client.orchestration import get_client

from flows.deployments import intake, only_source, summary_rows
from leadhub.errors import FatalError
from leadhub.settings import load_settings
from tests.flows.helpers import LEAD_SAMPLES


def _artifact(key: str) -> list:
    # Prefect 3.8.8's own artifact readers send nulls its server refuses, so
    # the API is asked with the filter fields it needs given.
    with get_client(sync_client=True) as client:
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0,
            "sort": "UPDATED_DESC"})
    return response.json()[0]["data"]


def test_an_intake_run_publishes_its_summary_as_a_table(prefect_api, store):
    stats = intake(paths=[str(p) for p in LEAD_SAMPLES], store=store)
    assert stats["new_leads"] == 48
    table = json.loads(_artifact("leadhub-intake"))  # a table artifact's rows, as JSON
    assert {"what": "new_leads", "count": 48} in table


def test_a_run_that_cannot_work_fails_with_the_message_and_no_traceback(prefect_api, tmp_path,
                                                                         caplog):
    config = tmp_path / "leadhub.yaml"
    config.write_text("stor: typo.db\n", encoding="utf-8")
    state = intake(config=str(config), return_state=True)
    assert state.is_failed()
    assert "stor: unknown key" in state.message
    assert "Traceback" not in caplog.text


def test_a_deployment_per_source_reads_only_that_source(tmp_path):
    config = tmp_path / "leadhub.yaml"
    config.write_text("sources:\n  - {type: files, name: a, paths: [a]}\n"
                      "  - {type: files, name: b, paths: [b]}\n", encoding="utf-8")
    settings = load_settings(config)
    assert [source.name for source in only_source(settings, "b").sources] == ["b"]
    try:
        only_source(settings, "c")
    except FatalError as error:
        assert "no source named 'c'" in str(error) and "a, b" in str(error)
    else:
        raise AssertionError("an unknown source must be refused")


def test_nested_summaries_become_rows():
    assert summary_rows({"new_leads": 2, "sinks": {"airtable": {"created": 3}}, "ignored": []}
                        ) == [{"what": "new_leads", "count": 2},
                              {"what": "sinks.airtable.created", "count": 3}]


def test_a_deployment_of_a_group_of_sources_reads_those_sources(tmp_path):
    config = tmp_path / "leadhub.yaml"
    config.write_text("sources:\n  - {type: files, name: a, paths: [a]}\n"
                      "  - {type: files, name: b, paths: [b]}\n"
                      "  - {type: files, name: c, paths: [c]}\n", encoding="utf-8")
    settings = load_settings(config)
    assert [source.name for source in only_source(settings, "a", "c").sources] == ["a", "c"]
    try:
        only_source(settings, "a", "x", "y")
    except FatalError as error:
        assert "no source named 'x', 'y'" in str(error)
    else:
        raise AssertionError("unknown sources must be refused")


def test_an_intake_without_follow_up_leaves_sync_and_alerts_to_their_deployments(
        tmp_path, monkeypatch):
    import flows.intake

    followed: list[str] = []
    monkeypatch.setattr(flows.intake, "sync_and_alert",
                        lambda settings: followed.append("yes") or {})
    config = tmp_path / "leadhub.yaml"
    config.write_text(f"store: {tmp_path / 'leadhub.db'}\nsources:\n"
                      f"  - {{type: files, name: a, paths: [{LEAD_SAMPLES[0]}]}}\n",
                      encoding="utf-8")
    flows.intake.run_intake(load_settings(config), follow_up=False)
    assert followed == []
    flows.intake.run_intake(load_settings(config))
    assert followed == ["yes"]


def test_a_source_that_is_down_fails_its_run_with_the_reason(prefect_api, tmp_path,
                                                             monkeypatch):
    import flows.intake
    from leadhub.errors import TransientError

    class Down:
        name = "sales"

        def batches(self, checkpoint):
            raise TransientError("imap.example.ru did not answer (timeout)")

        def scopes(self):
            return ["INBOX"]

    monkeypatch.setattr(flows.intake, "sources_of", lambda settings, paths=None: [Down()])
    config = tmp_path / "leadhub.yaml"
    config.write_text(f"store: {tmp_path / 'leadhub.db'}\n", encoding="utf-8")
    state = intake(config=str(config), follow_up=False, return_state=True)
    assert state.is_failed()
    assert state.message == ("a source could not be read this time:"
                             " sales: imap.example.ru did not answer (timeout)")
    assert {"what": "failed_sources", "count": 1} in json.loads(_artifact("leadhub-intake"))
