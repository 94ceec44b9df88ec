"""The Prefect flows that prefect.yaml deploys: the plain steps of flows/,
each run visible in the Prefect UI with its summary as a table artifact.

A run that cannot work (a wrong password, a bad config, a store it cannot
use) ends Failed with the one clear message, not a traceback; a bug still
fails with its traceback. The CLI does not import this module unless asked
to run through Prefect (`--prefect`, or PREFECT_API_URL set).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed

from leadhub.errors import FatalError
from leadhub.logs import install_masking
from leadhub.settings import Settings, load_settings


def _settings(config: str | None, store: str | None) -> Settings:
    install_masking()
    return load_settings(Path(config) if config else None, store=store)


def summary_rows(stats: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """A run's summary as table rows (nested summaries, a sink's, flattened)."""
    rows: list[dict[str, Any]] = []
    for key, value in stats.items():
        if isinstance(value, dict):
            rows += summary_rows(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            rows.append({"what": f"{prefix}{key}", "count": value})
    return rows


def _publish(key: str, title: str, stats: dict[str, Any]) -> None:
    create_table_artifact(summary_rows(stats), key=key, description=title)


def _failed(error: FatalError) -> Failed:
    """The run fails with what to fix, and no traceback."""
    return Failed(message=str(error))


@flow(name="intake", log_prints=False)
def intake(config: str | None = None, paths: list[str] | None = None,
           store: str | None = None, source: str | None = None,
           sources: list[str] | None = None, follow_up: bool = True):
    """Read the config's sources (or one of them, `source`, or a group of them,
    `sources`, or `paths`), process what is new, and with `follow_up` sync the
    sinks and send the alerts (off where sync and alerts are deployments of
    their own)."""
    from flows.intake import run_intake

    try:
        settings = _settings(config, store)
        chosen = ([source] if source is not None else []) + list(sources or [])
        if chosen:
            settings = only_source(settings, *chosen)
        stats = run_intake(settings, [Path(p) for p in paths] if paths else None, follow_up)
    except FatalError as error:
        return _failed(error)
    _publish("leadhub-intake", "What the last intake run did", stats)
    if stats.get("down_sources"):
        # the others were read; the UI shows which source is down, and why
        return Failed(message="a source could not be read this time: "
                              + "; ".join(stats["down_sources"]))
    return stats


def only_source(settings: Settings, *names: str) -> Settings:
    """The settings with only the named sources to read (a deployment per
    source, or per group of sources)."""
    unknown = [name for name in names if name not in {each.name for each in settings.sources}]
    if unknown:
        known = ", ".join(each.name for each in settings.sources) or "none"
        missing = ", ".join(repr(name) for name in unknown)
        raise FatalError(f"no source named {missing} in the config (its sources: {known})")
    return settings.model_copy(update={
        "sources": [each for each in settings.sources if each.name in names]})


@flow(name="sync", log_prints=False)
def sync(config: str | None = None, store: str | None = None, sink: str | None = None):
    """Bring the sinks up to date with the store, and people's work back."""
    from flows.sync import sync_all

    try:
        stats = sync_all(_settings(config, store), sink)
    except FatalError as error:
        return _failed(error)
    _publish("leadhub-sync", "What the last sync did, per sink", stats)
    return stats


@flow(name="export_bi", log_prints=False)
def export_bi(out: str, config: str | None = None, store: str | None = None,
              preset: str = "looker", since: date | None = None, as_of: date | None = None):
    """The nightly export: CSV tables, report.html, and the headline numbers
    as a Prefect artifact. `as_of`: count nothing after that day (default today)."""
    from flows.export import export_tables, kpi_markdown

    try:
        result = export_tables(_settings(config, store), Path(out), preset, since, as_of)
    except FatalError as error:
        return _failed(error)
    create_markdown_artifact(kpi_markdown(result.kpi, preset, Path(out), result.period.as_of),
                             key="leadhub-kpi", description="Headline numbers of the last export")
    return {name: str(path) for name, path in result.files.items()}


@flow(name="alerts", log_prints=False)
def alerts(config: str | None = None, store: str | None = None):
    """Alerts and follow-up tasks for what intake and sync brought in."""
    from flows.alerts import run_alerts

    try:
        stats = run_alerts(_settings(config, store))
    except FatalError as error:
        return _failed(error)
    _publish("leadhub-alerts", "Alerts queued and sent by the last run", stats)
    return stats


@flow(name="reminders", log_prints=False)
def reminders(config: str | None = None, store: str | None = None):
    """Reminders of follow-up tasks that are due and not done."""
    from flows.alerts import run_reminders

    try:
        stats = run_reminders(_settings(config, store))
    except FatalError as error:
        return _failed(error)
    _publish("leadhub-reminders", "Reminders queued and sent by the last run", stats)
    return stats


@flow(name="digest", log_prints=False)
def digest(config: str | None = None, store: str | None = None):
    """Yesterday's summary to the digest channels, and as the `leadhub-digest` artifact."""
    from flows.alerts import run_digest

    try:
        markdown, stats = run_digest(_settings(config, store))
    except FatalError as error:
        return _failed(error)
    create_markdown_artifact(markdown, key="leadhub-digest",
                             description="LeadHub's daily summary")
    return stats
