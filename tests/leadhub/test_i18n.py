"""LeadHub speaks Russian when LEADHUB_LANG or the locale asks for it, English
otherwise, in each command's output, help and errors; and the Russian catalog
stays complete: every message in the code has its translation, every
translation is of a message still in the code, and the compiled .mo is the .po."""

import ast
import gettext
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadhub import PROJECT_ROOT
from leadhub.cli import app
from leadhub.i18n import LOCALE_DIR, language

CATALOG = LOCALE_DIR / "ru" / "LC_MESSAGES"
CODE = ("leadhub", "connectors")


def po_entries(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (the header entry left out)."""
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    field = ""
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith(("msgid ", "msgstr ")):
            field, _, text = line.partition(" ")
            current[field] = ast.literal_eval(text)
        elif line.startswith('"'):
            current[field] += ast.literal_eval(line)
        elif not line.strip() and "msgstr" in current:
            if current["msgid"]:
                entries[current["msgid"]] = current["msgstr"]
            current = {}
    return entries


def code_messages() -> dict[str, str]:
    """Every text the code translates -> where: the literal arguments of _()
    and N_() (a name given to _() holds a text marked with N_ where it is
    defined), and the docstrings of commands (@handled), which typer shows as
    help."""
    found: dict[str, str] = {}
    for folder in CODE:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            where = str(path.relative_to(PROJECT_ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("_", "N_") and node.args
                        and isinstance(node.args[0], ast.Constant)):
                    found.setdefault(node.args[0].value, f"{where}:{node.lineno}")
                elif isinstance(node, ast.FunctionDef) and any(
                        isinstance(d, ast.Name) and d.id == "handled"
                        for d in node.decorator_list) and ast.get_docstring(node):
                    found.setdefault(inspect.cleandoc(ast.get_docstring(node)),
                                     f"{where}:{node.lineno}")
    return found


def test_every_message_in_the_code_has_a_russian_translation():
    catalog = po_entries(CATALOG / "leadhub.po")
    missing = [f"{where}: {message!r}" for message, where in code_messages().items()
               if not catalog.get(message)]
    assert missing == [], "add these to leadhub.po (then `make locale`):\n" + "\n".join(missing)


def test_every_translation_is_of_a_message_in_the_code():
    used = code_messages()
    stale = [message for message in po_entries(CATALOG / "leadhub.po") if message not in used]
    assert stale == [], "leadhub.po translates texts the code no longer has:\n" + "\n".join(
        map(repr, stale))


def test_the_compiled_catalog_is_the_po_file():
    with (CATALOG / "leadhub.mo").open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog
    compiled_entries = {msgid: text for msgid, text in catalog.items() if msgid}
    assert compiled_entries == po_entries(CATALOG / "leadhub.po"), (
        "leadhub.mo is older than leadhub.po: run `make locale` and commit the .mo")


def test_placeholders_are_kept_in_translation():
    import string

    def names(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    wrong = [msgid for msgid, msgstr in po_entries(CATALOG / "leadhub.po").items()
             if names(msgid) != names(msgstr)]
    assert wrong == []


@pytest.mark.parametrize(("env", "expected"), [
    pytest.param({"LEADHUB_LANG": "ru"}, "ru", id="leadhub-lang-ru"),
    pytest.param({"LEADHUB_LANG": "en", "LANG": "ru_RU.UTF-8"}, "en", id="leadhub-lang-wins"),
    pytest.param({"LANG": "ru_RU.UTF-8"}, "ru", id="lang-ru"),
    pytest.param({"LC_ALL": "C.UTF-8", "LANG": "ru_RU.UTF-8"}, "en", id="lc-all-wins"),
    pytest.param({"LC_MESSAGES": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}, "ru",
                 id="lc-messages-over-lang"),
    pytest.param({"LANG": "de_DE.UTF-8"}, "en", id="other-language-english"),
    pytest.param({}, "en", id="nothing-set-english"),
])
def test_the_language_follows_leadhub_lang_then_the_locale(monkeypatch, env, expected):
    for name in ("LEADHUB_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert language() == expected


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A store with two leads of one person (a possible duplicate), and a config."""
    folder = tmp_path_factory.mktemp("i18n")
    (folder / "leads.csv").write_text(
        "Name,Phone,Email,Date\n"
        "Анна Смирнова,+79131234567,anna@example.ru,2024-03-04\n"
        "Олег Титов,+79137654321,,2024-03-05\n", encoding="utf-8")
    (folder / "leadhub.yaml").write_text(
        f"store: {folder / 'leadhub.db'}\n"
        f"sources:\n  - {{type: files, name: inbox, paths: [{folder / 'leads.csv'}]}}\n",
        encoding="utf-8")
    (folder / "broken.yaml").write_text("store: [unclosed\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(folder / "leads.csv"),
                                      "--db", str(folder / "leadhub.db"), "--quiet"])
    assert result.exit_code == 0, result.output
    return folder


COMMANDS = {
    "status": (["status", "--db", "{w}/leadhub.db"], "Последние запуски", "Last runs"),
    "check": (["check", "--config", "{w}/leadhub.yaml"], "источник inbox (files)",
              "source inbox (files)"),
    "ingest": (["ingest", "{w}/leads.csv", "--db", "{w}/leadhub.db"], "Итоги загрузки",
               "Ingest summary"),
    "export": (["export", "--db", "{w}/leadhub.db", "--out", "{w}/bi"],
               "BI-таблицы и дашборд", "The BI tables and the dashboard"),
    "contacts": (["contacts", "duplicates", "--db", "{w}/leadhub.db"], "Возможные дубли",
                 "Possible duplicates"),
    "tasks": (["tasks", "--db", "{w}/leadhub.db"], "Задачи", "Tasks"),
    "config-error": (["status", "--config", "{w}/broken.yaml"], "некорректный YAML",
                     "is not valid YAML"),
    "missing-file": (["ingest", "{w}/nowhere.csv"], "нет такого файла или папки",
                     "no such file or folder"),
    "unusable-store": (["status", "--db", "{w}/leads.csv"], "нельзя использовать",
                       "cannot be used"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_a_command_speaks_the_language_asked(workspace, command, lang):
    args, russian, english = COMMANDS[command]
    result = CliRunner(env={"LEADHUB_LANG": lang}).invoke(
        app, [arg.format(w=workspace) for arg in args])
    output = result.output + result.stderr
    if lang == "ru":
        assert russian in output and english not in output, output
    else:
        assert english in output and russian not in output, output


@pytest.mark.parametrize(("lang", "expected", "absent"), [
    pytest.param("ru", "Загрузить файлы и папки в хранилище", "Ingest files and folders",
                 id="ru"),
    pytest.param("en", "Ingest files and folders", "Загрузить файлы", id="en"),
])
def test_help_is_in_the_language_chosen_when_leadhub_starts(lang, expected, absent):
    env = {**os.environ, "LEADHUB_LANG": lang, "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", "from leadhub.cli import app; app()", "--help"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert expected in done.stdout and absent not in done.stdout, done.stdout
