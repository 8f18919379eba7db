"""The validator, from the format: what it must refuse, and what it only warns about."""

from __future__ import annotations

from chaton.transparency.validator import errors, validate

GOOD = """# a comment
file.class = service
file.protocol = ChatonsInfos-0.5
file.datetime = 2026-12-05T10:00:00+01:00
file.generator = Chaton
file.url = https://chaton.example.org/.well-known/chatonsinfos/pads.properties

service.name = Pads
service.website = https://pads.example.org/
service.startdate = 2026-07-01
service.status.level = ON
service.registration = Member
software.name = Etherpad
software.website = https://etherpad.org
software.license.name = Apache-2.0
host.name = main
metrics.etherpad.pads.2026.months = ;;;;;;3;4;5;6;7;8
"""


def with_line(key: str, value: str | None) -> str:
    """Return GOOD with ``key`` set to ``value`` (None: removed)."""
    lines = [line for line in GOOD.splitlines() if not line.startswith(f"{key} =")]
    if value is not None:
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def messages(text: str) -> list[str]:
    return [str(finding) for finding in errors(validate(text))]


def test_a_good_file_has_no_finding() -> None:
    assert validate(GOOD) == []


def test_bad_dates_and_datetimes_are_errors() -> None:
    assert any("service.startdate" in line and "DATE" in line
               for line in messages(with_line("service.startdate", "05/12/2026")))
    assert messages(with_line("service.startdate", "2026-02-30"))
    assert messages(with_line("file.datetime", "2026-12-05 10:00"))
    assert messages(with_line("file.datetime", "yesterday"))


def test_bad_urls_are_errors() -> None:
    for url in ("pads.example.org", "/relative/path", "ftp://pads.example.org/",
                "https://", "https://pads example.org/"):
        assert any("service.website" in line for line in
                   messages(with_line("service.website", url))), url


def test_a_status_out_of_the_list_is_an_error() -> None:
    found = messages(with_line("service.status.level", "UP"))
    assert found and "ON, MAINTENANCE, DOWN, OFF, DRAFT" in found[0]
    assert messages(with_line("service.registration", "Open"))


def test_missing_required_keys_are_errors() -> None:
    for key in ("file.class", "file.protocol", "file.datetime", "file.generator", "file.url",
                "service.name", "service.status.level", "software.name"):
        assert any(key in line and "missing" in line
                   for line in messages(with_line(key, None))), key


def test_an_unknown_key_is_only_a_warning() -> None:
    findings = validate(with_line("service.colour", "blue"))
    assert [(finding.level, finding.key) for finding in findings] == [("warning",
                                                                       "service.colour")]


def test_numbers_lists_allow_empty_cells_but_not_words_nor_a_wrong_count() -> None:
    assert messages(with_line("metrics.etherpad.pads.2026.months", ";;1;2;;;;;;;;")) == []
    assert messages(with_line("metrics.etherpad.pads.2026.months", "1;two;3;;;;;;;;;"))
    assert any("11 cells" in line for line in
               messages(with_line("metrics.etherpad.pads.2026.months", ";;;;;;;;;;")))
    assert messages(with_line("metrics.etherpad.pads.2024.days", ";" * 365)) == []  # leap
    assert messages(with_line("metrics.etherpad.pads.2026.days", ";" * 365))


def test_a_country_code_an_email_and_syntax_errors() -> None:
    assert messages(with_line("host.country.code", "France"))
    assert messages(with_line("service.contact.email", "not-an-address"))
    assert messages(GOOD + "a line without an equals sign\n")
    assert any("given twice" in line for line in messages(GOOD + "service.name = Again\n"))
