"""The inventory of decisions shows what members wrote as text, never as markup.

From the attacker's side: a member titles a proposal (or names their account)
with HTML, a Markdown link to ``javascript:``, an image, emphasis, pipes.
Whoever renders the activity report — a Markdown renderer that lets raw HTML
through, a browser opening the HTML export — sees those characters, and the
table keeps its rows and columns. Checked through the API, the web export and
``chaton decision inventory``, each rendered by a real Markdown parser
(markdown-it, CommonMark with GFM tables, raw HTML allowed) and an HTML parser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from chaton.cli.app import app
from chaton.core import clock
from chaton.directory import actions as directory_actions
from chaton.governance import actions, export
from chaton.governance.tests.test_api import (
    GOVERNANCE,
    GRANT_PASSWORDS,
    api_for,
    make_account,
    make_member,
)

pytestmark = pytest.mark.django_db(transaction=True)

#: Titles a hostile member might write; each must come out as these very characters.
HOSTILE_TITLES = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![pixel](https://tracker.example/p.png)",
    "<https://evil.example/>",
    "Kim | gets | three | cells",
    "**bold** _slanted_ `code` ~~gone~~ \\ end",
    "&lt;b&gt; stays &amp; as typed",
    '<img src=x onerror="alert(1)">',
]
#: The display name of the proposing account: markup in the "Proposed by" column.
HOSTILE_NAME = "<b>Mallory</b> [me](javascript:alert(2))"


class Table(HTMLParser):
    """Collect the text of every table row (a list of cell texts) and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> Table:
    table = Table()
    table.feed(html)
    table.close()
    return table


def render_markdown(text: str) -> str:
    """Render as a permissive renderer would: CommonMark, GFM tables, raw HTML let through."""
    return (MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
            .render(text))


def assert_shown_as_text(html: str, titles: list[str], proposer: str) -> None:
    """Assert that ``html`` runs nothing, links nowhere but Chaton, and shows each title (and
    the proposer's name) as one whole cell of a row of eight."""
    table = parsed(html)
    tags = {tag for tag, _attributes in table.tags}
    assert not tags & {"script", "img", "strong", "em", "code", "s", "del", "b"}, tags
    for tag, attributes in table.tags:
        if tag == "a":
            assert (attributes.get("href") or "").startswith("http://testserver/decisions/"), \
                attributes
    rows = [row for row in table.rows if len(row) == 8 and row[0].startswith("#")]
    assert len(rows) == len(titles), table.rows
    assert sorted(row[1] for row in rows) == sorted(titles)
    assert {row[2] for row in rows} == {proposer}


@pytest.fixture
def hostile(directory):
    """Proposals with hostile titles by an account with a hostile display name; a voter."""
    proposer = make_member("mallory")
    directory_actions.do_update_account(proposer, acting_user=None, display_name=HOSTILE_NAME)
    voter = make_member("aubin")
    make_account("kim")
    directory_actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    for title in HOSTILE_TITLES:
        actions.do_propose(title, [GRANT_PASSWORDS], acting_user=proposer)
    return voter


def _period() -> dict[str, str]:
    today = clock.today().isoformat()
    return {"start": today, "end": today}


def test_markdown_text_is_literal_and_stays_in_its_cell() -> None:
    assert export.markdown_text("<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert export.markdown_text("[x](javascript:y)") == "\\[x\\](javascript:y)"
    # A newline would end the table row, a pipe the cell.
    assert export.markdown_text("one\ntwo | three\r\n") == "one two \\| three"
    for text in [*HOSTILE_TITLES, "line\nbreak", "tab\there"]:
        rendered = render_markdown(f"| a | b |\n|---|---|\n| {export.markdown_text(text)} | z |\n")
        rows = parsed(rendered).rows
        assert rows == [["a", "b"], [" ".join(text.split()), "z"]], (text, rendered)


def test_api_inventory_shows_hostile_titles_as_text(client, hostile, settings) -> None:
    settings.CHATON.public_url = "http://testserver"
    api = api_for(client, hostile)
    markdown = api.get(f"{GOVERNANCE}/inventory", **_period())
    assert markdown.status_code == 200, markdown.content
    assert markdown["Content-Security-Policy"].startswith("default-src 'none'")
    text = markdown.content.decode()
    assert "<" not in text.partition("](<")[0], text  # no raw HTML before the first link
    assert not re.search(r"(?<!\\)\]\(javascript", text), text
    assert_shown_as_text(render_markdown(text), HOSTILE_TITLES, HOSTILE_NAME)

    page = api.get(f"{GOVERNANCE}/inventory", format="html", **_period())
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert page["Content-Security-Policy"].startswith("default-src 'none'")
    assert_shown_as_text(page.content.decode(), HOSTILE_TITLES, HOSTILE_NAME)


def test_web_export_shows_hostile_titles_as_text(client, hostile, settings) -> None:
    settings.CHATON.public_url = "http://testserver"
    client.force_login(hostile)
    for format_name in ("md", "html"):
        response = client.get(reverse("decision-export"), {**_period(), "format": format_name})
        assert response.status_code == 200
        assert response["Content-Security-Policy"].startswith("default-src 'none'")
        content = response.content.decode()
        html = render_markdown(content) if format_name == "md" else content
        assert_shown_as_text(html, HOSTILE_TITLES, HOSTILE_NAME)


def test_cli_inventory_shows_hostile_titles_as_text(hostile, settings, english) -> None:
    settings.CHATON.public_url = "http://testserver"
    today = clock.today().isoformat()
    for format_name in ("md", "html"):
        result = CliRunner().invoke(app, ["decision", "inventory", "--from", today, "--to", today,
                                          "--format", format_name])
        assert result.exit_code == 0, (result.output, result.exception)
        html = render_markdown(result.stdout) if format_name == "md" else result.stdout
        assert_shown_as_text(html, HOSTILE_TITLES, HOSTILE_NAME)
