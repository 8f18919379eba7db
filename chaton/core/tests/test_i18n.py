"""The French catalogue: complete, compiled, up to date with the sources, and used.

Chaton's users are French associations first: every string a person reads
exists in French. These tests fail when a string is added without its
translation, when a translation is left empty or fuzzy, when ``django.po`` was
changed but not compiled, and when a page or an action error does not follow
the language asked for.

To fix a failure, from the ``chaton/`` folder::

    ../.venv/bin/django-admin makemessages -l fr --no-obsolete --settings=chaton.project.settings
    # translate the new or fuzzy entries of locale/fr/LC_MESSAGES/django.po
    ../.venv/bin/django-admin compilemessages --settings=chaton.project.settings
"""

from __future__ import annotations

import gettext
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import translation
from pytest_django.fixtures import Settings as DjangoSettings

from chaton.adapters.ldap import use_ldap
from chaton.adapters.ldap.fake import FakeDirectory
from chaton.core import runner
from chaton.core.errors import Conflict, InvalidInput
from chaton.directory import actions

BASE = "dc=chaton,dc=test"
SOURCE_DIRECTORY = Path(settings.BASE_DIR)
LOCALE_DIRECTORY = Path(settings.LOCALE_PATHS[0])
PO_FILE = LOCALE_DIRECTORY / "fr" / "LC_MESSAGES" / "django.po"
MO_FILE = PO_FILE.with_suffix(".mo")
#: Named placeholders of python-format messages: ``%(name)s``, ``%(count)d`` …
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdfr]")
# The French strings below use the typographic apostrophe (U+2019), as the catalogue does
# (hence the RUF001 exceptions).
HOW_TO_FIX = ("run makemessages -l fr, translate, then compilemessages "
              "(see the docstring of chaton/core/tests/test_i18n.py)")


@dataclass
class Entry:
    """One message of a PO file: its context, ids, translations and flags."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)


def parse_po(path: Path) -> list[Entry]:
    """Given a PO file, return its entries (the header included, as msgid "").

    Enough of the format for files written by ``makemessages``: comments,
    ``#,`` flags, ``#~`` obsolete entries, msgctxt, msgid, msgid_plural,
    msgstr and ``msgstr[n]``, each possibly continued on the next lines.
    """
    entries: list[Entry] = []
    entry = Entry()
    started = False
    current: tuple[str, int] | None = None  # the keyword the next continuation line extends

    def finish() -> None:
        nonlocal entry, started, current
        if started:
            entries.append(entry)
        entry, started, current = Entry(), False, None

    for raw_line in path.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            line = line[2:].strip()
            if not line or line.startswith("#"):
                continue
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            continue
        elif line.startswith("#"):
            continue
        match = re.fullmatch(r'(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(".*")', line)
        if match:
            keyword, index, text = match.group(1), int(match.group(2) or 0), match.group(3)
            started = True
            current = (keyword, index)
            _append(entry, keyword, index, _po_string(text))
        elif line.startswith('"') and current is not None:
            _append(entry, current[0], current[1], _po_string(line))
        else:
            raise AssertionError(f"{path}: cannot read the line {raw_line!r}")
    finish()
    return entries


def _po_string(quoted: str) -> str:
    """Given a PO string literal (``"…"`` with C escapes: \\" \\\\ \\n \\t), return its text."""
    return str(json.loads(quoted))


def _append(entry: Entry, keyword: str, index: int, text: str) -> None:
    """Add ``text`` to the field ``keyword`` (``msgstr[index]`` for msgstr) of ``entry``."""
    if keyword == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    elif keyword == "msgid":
        entry.msgid += text
    elif keyword == "msgid_plural":
        entry.msgid_plural = (entry.msgid_plural or "") + text
    else:
        entry.msgstr[index] = entry.msgstr.get(index, "") + text


def _messages(entries: list[Entry]) -> list[Entry]:
    """Return the live messages: neither the header nor obsolete entries."""
    return [entry for entry in entries if entry.msgid and not entry.obsolete]


def _describe(entry: Entry) -> str:
    return f"{entry.msgctxt}|{entry.msgid!r}" if entry.msgctxt else repr(entry.msgid)


def _gettext_tool(name: str) -> str:
    """Return the path of a GNU gettext program; fail (never skip) when it is missing."""
    path = shutil.which(name)
    assert path, f"{name} is not installed: apt-get install gettext"
    return path


# -- the catalogue itself ---------------------------------------------------------


def test_catalogue_header_is_french_with_french_plurals() -> None:
    header = next(entry for entry in parse_po(PO_FILE) if entry.msgid == "")
    assert "fuzzy" not in header.flags, "the header is still marked fuzzy"
    assert "Language: fr\n" in header.msgstr[0]
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in header.msgstr[0]
    assert "charset=UTF-8" in header.msgstr[0]


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    messages = _messages(parse_po(PO_FILE))
    assert len(messages) > 100, "the catalogue looks truncated"
    untranslated = [_describe(entry) for entry in messages
                    if not all(text.strip() for text in entry.msgstr.values())
                    or len(entry.msgstr) != (2 if entry.msgid_plural is not None else 1)]
    fuzzy = [_describe(entry) for entry in messages if "fuzzy" in entry.flags]
    assert not untranslated, f"untranslated: {untranslated}; {HOW_TO_FIX}"
    assert not fuzzy, f"fuzzy, check then remove the flag: {fuzzy}"


def test_translations_keep_every_placeholder() -> None:
    wrong = []
    for entry in _messages(parse_po(PO_FILE)):
        if "python-format" not in entry.flags:
            continue
        expected = sorted(set(PLACEHOLDER.findall(entry.msgid)
                              + PLACEHOLDER.findall(entry.msgid_plural or "")))
        for index, text in entry.msgstr.items():
            if sorted(set(PLACEHOLDER.findall(text))) != expected:
                wrong.append((_describe(entry), index, text))
    assert not wrong, f"placeholders differ from the source: {wrong}"


def test_msgfmt_accepts_the_catalogue(tmp_path: Path) -> None:
    completed = runner.run([_gettext_tool("msgfmt"), "--check", "--statistics",
                            "-o", str(tmp_path / "check.mo"), str(PO_FILE)])
    # msgfmt prints its statistics on stderr: "409 translated messages."
    assert "untranslated" not in completed.stderr and "fuzzy" not in completed.stderr, (
        completed.stderr)


def test_compiled_catalogue_is_up_to_date(tmp_path: Path) -> None:
    """The committed .mo holds exactly what compiling the committed .po gives.

    Compared as catalogues rather than bytes, so another version of msgfmt
    (which may lay the file out differently) does not fail the test.
    """
    fresh = tmp_path / "django.mo"
    runner.run([_gettext_tool("msgfmt"), "--check-format", "-o", str(fresh), str(PO_FILE)])
    assert MO_FILE.exists(), f"{MO_FILE} is missing: run compilemessages"
    with fresh.open("rb") as fresh_file, MO_FILE.open("rb") as committed_file:
        expected = gettext.GNUTranslations(fresh_file)._catalog  # type: ignore[attr-defined]
        committed = gettext.GNUTranslations(committed_file)._catalog  # type: ignore[attr-defined]
    stale = sorted(str(key) for key in expected.keys() | committed.keys()
                   if expected.get(key) != committed.get(key))
    assert not stale, (f"django.mo is older than django.po ({len(stale)} messages differ, "
                       f"e.g. {stale[:3]}): run compilemessages")


def test_catalogue_holds_every_string_of_the_sources(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """makemessages over a copy of the sources finds no message the catalogue lacks.

    The copy keeps the real catalogue untouched; its own ``locale`` folder is
    the only one makemessages writes to.
    """
    _gettext_tool("xgettext")
    copy = tmp_path / "chaton"
    shutil.copytree(SOURCE_DIRECTORY, copy, ignore=shutil.ignore_patterns(
        "locale", "tests", "migrations", "__pycache__", "static"))
    copied_po = copy / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    copied_po.parent.mkdir(parents=True)
    shutil.copy(PO_FILE, copied_po)
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[copy / "locale"]):
        call_command("makemessages", locale=["fr"], no_obsolete=True, verbosity=0)
    committed = {entry.key for entry in _messages(parse_po(PO_FILE))}
    found = _messages(parse_po(copied_po))
    assert len(found) > 100, "makemessages found almost nothing: is xgettext working?"
    missing = sorted(_describe(entry) for entry in found if entry.key not in committed)
    assert not missing, f"strings not in the French catalogue: {missing}; {HOW_TO_FIX}"


# -- the catalogue in use -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("site_default", ["fr", "en"])
def test_login_page_follows_accept_language(client: Client, settings: DjangoSettings,
                                            site_default: str) -> None:
    settings.LANGUAGE_CODE = site_default  # the header wins whatever the site's default
    french = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert '<html lang="fr">' in french
    assert "<h1>Se connecter</h1>" in french
    assert "Utilisez l’identifiant et le mot de passe de votre compte" in french  # noqa: RUF001
    assert "Log in" not in french
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="en">' in english
    assert "<h1>Log in</h1>" in english
    assert "Use the user name and password of your" in english
    assert "Se connecter" not in english


@pytest.mark.django_db
def test_language_cookie_wins_over_accept_language(client: Client,
                                                   settings: DjangoSettings) -> None:
    settings.LANGUAGE_CODE = "en"
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "fr"})
    french = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Se connecter</h1>" in french and "Langue\u00a0:" in french
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    english = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<h1>Log in</h1>" in english and "Language:" in english


@pytest.mark.django_db
def test_language_switch_in_the_footer_gives_french_pages(client: Client,
                                                          settings: DjangoSettings) -> None:
    settings.LANGUAGE_CODE = "en"
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/login/"})
    assert response.status_code == 302
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert "<h1>Se connecter</h1>" in client.get(reverse("login")).content.decode()


@pytest.mark.django_db
def test_action_errors_read_in_the_active_language() -> None:
    with use_ldap(FakeDirectory(BASE), BASE):
        actions.do_create_account("sacha", acting_user=None, display_name="Sacha Dupré",
                                  email="sacha@example.org")
        with translation.override("fr"), pytest.raises(Conflict) as duplicate:
            actions.do_create_account("sacha", acting_user=None, display_name="Autre Sacha",
                                      email="autre@example.org")
        with translation.override("fr"), pytest.raises(InvalidInput) as bad_uid:
            actions.do_create_account("9 vies", acting_user=None, display_name="Neuf",
                                      email="neuf@example.org")
        with translation.override("en"), pytest.raises(Conflict) as duplicate_in_english:
            actions.do_create_account("sacha", acting_user=None, display_name="Autre Sacha",
                                      email="autre@example.org")
    assert str(duplicate.value) == "L’identifiant sacha est déjà pris."  # noqa: RUF001
    assert duplicate.value.as_dict() == {"code": "conflict", "field": "uid",
                                         "message": "L’identifiant sacha est déjà pris."}  # noqa: RUF001
    assert str(bad_uid.value).startswith("Un identifiant compte de 2 à 32 caractères")
    assert str(duplicate_in_english.value) == "The user name sacha is already taken."


@pytest.mark.django_db
def test_french_error_page_for_a_missing_page(client: Client) -> None:
    page = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="fr")
    assert page.status_code == 404
    content = page.content.decode()
    assert "Page introuvable" in content and "Il n’y a rien à cette adresse." in content  # noqa: RUF001
