from pathlib import Path

import pytest

from leadhub.errors import ConfigError
from leadhub.settings import load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "leadhub.example.yaml"


def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "leadhub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_is_valid():
    settings = load_settings(EXAMPLE)
    assert settings.sources[0].name == "imports"
    assert settings.store == str(EXAMPLE.parent / "leadhub.db")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("regoin: RU\n", "regoin: unknown key", id="misspelt-key"),
        pytest.param("region: XX\n", "region: 'XX' is not a two-letter region", id="bad-region"),
        pytest.param("sources:\n  - type: ftp\n", "sources[0].type is 'ftp'",
                     id="unknown-source-type"),
        pytest.param("sources:\n  - type: files\n", "sources.0.paths: Field required",
                     id="source-missing-paths"),
        pytest.param("sources:\n  - type: files\n    paths: [a]\n    folder: b\n",
                     "sources.0.folder: unknown key", id="unknown-source-key"),
        pytest.param("phone_display: fancy\n", "phone_display", id="bad-display-style"),
        pytest.param("timezone: Mars/Base\n", "timezone: 'Mars/Base' is not a time zone",
                     id="bad-timezone"),
        pytest.param("source_rules:\n  - category: Телевизор\n    utm_source: [tv]\n",
                     "source_rules[0].category 'Телевизор' is not in source_categories",
                     id="rule-category-not-in-list"),
        pytest.param("source_rules:\n  - category: Сайт\n    utm: [x]\n",
                     "source_rules[0] has unknown field(s) ['utm']", id="rule-unknown-field"),
        pytest.param("csv:\n  delimiter: '|'\n", "csv.delimiter", id="bad-delimiter"),
        pytest.param("export:\n  presets:\n    looker: {midnight: noon}\n",
                     "looker.midnight: use time or day", id="bad-midnight"),
        pytest.param("delivery:\n  retry_for_hours: -1\n", "delivery.retry_for_hours",
                     id="negative-retry-window"),
        pytest.param("- just\n- a list\n", "must be a mapping", id="not-a-mapping"),
        pytest.param("store: [unclosed\n", "not valid YAML", id="broken-yaml"),
        pytest.param("sources:\n  - type: files\n   paths: [a]\n", "       paths: [a]\n       ^",
                     id="broken-yaml-shows-the-line"),
        pytest.param("identity:\n  provider_domains: [my mail]\n",
                     "'my mail' is not a mail domain like yandex.ru", id="identity-bad-domain"),
        pytest.param("identity:\n  mailbox_rules: {mail.ru: [ignore_case]}\n",
                     "identity.mailbox_rules.mail.ru.0", id="identity-unknown-mailbox-rule"),
        pytest.param("identity:\n  diminutives: {x: {Иван: [Ваня]}}\n",
                     "identity.diminutives.x", id="identity-unknown-gender"),
        pytest.param("identity:\n  role_mailboxes: [info@firm.ru]\n",
                     "is not the part of an address before @", id="identity-whole-address"),
        pytest.param("identity:\n  aliases: {}\n", "identity.aliases: unknown key",
                     id="identity-unknown-key"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, names):
    with pytest.raises(ConfigError) as error:
        load_settings(_config(tmp_path, text))
    assert names in str(error.value)


def test_secrets_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADHUB_TEST_STORE", "from-env.db")
    settings = load_settings(_config(tmp_path, "store: ${LEADHUB_TEST_STORE}\n"))
    assert settings.store == str(tmp_path / "from-env.db")


def test_missing_environment_variable_names_key_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("LEADHUB_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match="store: environment variable LEADHUB_NOT_SET"):
        load_settings(_config(tmp_path, "store: ${LEADHUB_NOT_SET}\n"))


def test_paths_are_relative_to_the_config_file(tmp_path):
    settings = load_settings(
        _config(tmp_path, "sources:\n  - type: files\n    paths: [inbox/]\n"))
    assert settings.sources[0].paths == [tmp_path / "inbox"]


def test_field_aliases_add_to_the_built_in_ones(tmp_path):
    settings = load_settings(_config(tmp_path, "field_aliases:\n  phone: [Мобильник]\n"))
    fields = settings.field_map()
    assert fields.field_for("Мобильник") == "phone"
    assert fields.field_for("Телефон") == "phone"


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


IMAP = "sources:\n  - type: imap\n    name: sales\n    username: s@x.ru\n"


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        pytest.param("    host: imap.yandex.ru\n", "set exactly one of password, oauth2_token",
                     id="no-credentials"),
        pytest.param("    host: imap.yandex.ru\n    password: a\n    oauth2_token: b\n",
                     "set exactly one of password, oauth2_token", id="both-credentials"),
        pytest.param("    host: imap.yandex.ru\n    password: a\n    tls: none\n",
                     "only allowed for a server on this machine", id="plain-text-off-loopback"),
        pytest.param("    host: imap.yandex.ru\n    password: a\n    after_processing: delete\n",
                     "sources.0.after_processing: 'delete': use leave, seen, move:FOLDER",
                     id="unknown-policy"),
        pytest.param("    host: imap.yandex.ru\n    password: a\n    folders: []\n",
                     "sources.0.folders", id="no-folders"),
    ],
)
def test_bad_mailbox_config_names_the_key(tmp_path, extra, names):
    with pytest.raises(ConfigError) as error:
        load_settings(_config(tmp_path, IMAP + extra))
    assert names in str(error.value)


@pytest.mark.parametrize(
    ("tls", "port"),
    [
        pytest.param("implicit", 993, id="implicit-tls"),
        pytest.param("starttls", 143, id="starttls"),
    ],
)
def test_mailbox_port_follows_tls(tmp_path, tls, port):
    settings = load_settings(_config(tmp_path, IMAP + f"    host: mx.ru\n    password: a\n"
                                                      f"    tls: {tls}\n"))
    assert settings.sources[0].port == port


def test_mailbox_password_never_shows_in_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LEADHUB_TEST_SECRET", "hunter2-hunter2")
    settings = load_settings(_config(
        tmp_path, IMAP + "    host: mx.ru\n    password: ${LEADHUB_TEST_SECRET}\n"))
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.sources[0])
    assert settings.sources[0].password.get_secret_value() == "hunter2-hunter2"


def test_source_names_are_unique(tmp_path):
    text = ("sources:\n  - type: files\n    name: a\n    paths: [x]\n"
            "  - type: files\n    name: a\n    paths: [y]\n")
    with pytest.raises(ConfigError, match="repeated: a"):
        load_settings(_config(tmp_path, text))


def test_secrets_come_from_prefect_secret_blocks(prefect_api, tmp_path):
    from prefect.blocks.system import Secret

    Secret(value="from-a-block.db").save("leadhub-test-store", overwrite=True)
    settings = load_settings(_config(tmp_path, "store: ${secret:leadhub-test-store}\n"))
    assert settings.store == str(tmp_path / "from-a-block.db")


def test_missing_prefect_secret_block_names_key_and_block(prefect_api, tmp_path):
    with pytest.raises(ConfigError, match="store: Prefect Secret block 'nope-nope'"):
        load_settings(_config(tmp_path, "store: ${secret:nope-nope}\n"))


def test_webhook_needs_a_secret_unless_local_and_open(tmp_path):
    with pytest.raises(ConfigError, match="form 'site': auth token needs a secret"):
        load_settings(_config(tmp_path, "sources:\n  - {type: webhook, form: site}\n"))
    with pytest.raises(ConfigError, match="auth: none, which is only allowed while web.host"):
        load_settings(_config(tmp_path, "web: {host: 0.0.0.0}\n"
                                        "sources:\n  - {type: webhook, form: a, auth: none}\n"))


def test_webhook_hmac_follows_the_preset(tmp_path):
    settings = load_settings(_config(
        tmp_path, "sources:\n  - {type: webhook, form: q, preset: typeform, auth: hmac,"
                  " secret: x}\n"))
    form = settings.sources[0]
    assert (form.signature_header, form.signature_encoding, form.signature_prefix) == (
        "Typeform-Signature", "base64", "sha256=")


def test_a_postgres_store_is_kept_as_its_url(tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_PASSWORD", "hunter2")
    config = tmp_path / "leadhub.yaml"
    config.write_text("store: postgresql://sales:${STORE_PASSWORD}@db.example.ru:5432/leads\n")
    settings = load_settings(config)
    assert settings.store == "postgresql://sales:hunter2@db.example.ru:5432/leads"


@pytest.mark.parametrize("section", ["bi", "export"])
def test_the_rfm_table_of_the_config_replaces_the_built_in_one(tmp_path, section):
    from datetime import date

    from flows.export import bi_rules
    from transforms.bi import rfm_segment

    settings = load_settings(_config(tmp_path, f"{section}:\n  rfm_segments:\n"
                                               "    - {segment: Лучшие, f_min: 4, m_min: 4}\n"
                                               "  rfm_fallback: Остальные\n"))
    rules = bi_rules(settings, date(2026, 11, 30))
    assert [rfm_segment(5, 5, 5, rules), rfm_segment(1, 1, 1, rules)] == ["Лучшие", "Остальные"]


def test_the_rfm_table_is_set_in_one_place(tmp_path):
    table = "  rfm_segments:\n    - {segment: Лучшие, f_min: 4}\n"
    with pytest.raises(ConfigError, match="bi.rfm_segments and export.rfm_segments"):
        load_settings(_config(tmp_path, f"bi:\n{table}export:\n{table}"))
