"""The runner, secrets at rest, and the configuration loader."""

import logging
import os

import pytest

from chaton.core import runner, secrets
from chaton.project import config


def test_runner_turns_failures_into_typed_errors() -> None:
    with pytest.raises(runner.CommandNotFound):
        runner.run(["/nonexistent/program"])
    with pytest.raises(runner.CommandFailed) as failed:
        runner.run(["sh", "-c", "echo hunter2-secret >&2; exit 3"], secrets=["hunter2-secret"])
    assert failed.value.returncode == 3
    assert "hunter2-secret" not in str(failed.value) and "***" in str(failed.value)
    with pytest.raises(runner.CommandTimeout):
        runner.run(["sleep", "5"], timeout=0.2)
    assert runner.run(["echo", "ok"]).stdout == "ok\n"


def test_registered_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    runner.register_secret("s3cr3t-value-xyz")
    logger = logging.getLogger("chaton.test")
    logger.addFilter(runner.SecretMaskingFilter())
    with caplog.at_level(logging.INFO, logger="chaton.test"):
        logger.info("password is %s", "s3cr3t-value-xyz")
    assert "s3cr3t-value-xyz" not in caplog.text and "***" in caplog.text


def test_secrets_round_trip_and_refuse_another_key(tmp_path) -> None:
    token = secrets.encrypt("a database password", data_dir=str(tmp_path))
    assert "a database password" not in token
    assert secrets.decrypt(token, data_dir=str(tmp_path)) == "a database password"
    assert oct((tmp_path / "secrets.key").stat().st_mode & 0o777) == "0o600"
    other = tmp_path / "other"
    with pytest.raises(secrets.SecretError):
        secrets.decrypt(token, data_dir=str(other))


def test_config_file_then_environment(tmp_path, monkeypatch) -> None:
    file = tmp_path / "chaton.toml"
    file.write_text('collective_name = "Les Chatons du Test"\n[ldap]\nurl = "ldap://127.0.0.1:1389"\n'
                    '[directory]\nvoting_delay_days = 30\n')
    monkeypatch.setenv("CHATON_DIRECTORY_VOTING_DELAY_DAYS", "5")
    monkeypatch.setenv("CHATON_LDAP_MANAGED", "no")
    loaded = config.load(file)
    assert loaded.collective_name == "Les Chatons du Test"
    assert loaded.ldap.url == "ldap://127.0.0.1:1389"
    assert loaded.ldap.managed is False
    assert loaded.directory.voting_delay_days == 5


def test_config_errors_are_clear(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ldap]\nulr = 'typo'\n")
    with pytest.raises(config.ConfigError, match="ulr"):
        config.load(bad)
    monkeypatch.setenv("CHATON_DIRECTORY_VOTING_DELAY_DAYS", "ten")
    with pytest.raises(config.ConfigError, match="integer"):
        config.load(os.devnull)
    with pytest.raises(config.ConfigError, match="no such"):
        config.load(tmp_path / "missing.toml")


def test_pages_load_nothing_from_other_hosts(client) -> None:
    """The API docs and the login page use only this server's files (no CDN: privacy)."""
    import re

    for path in ["/api/v1/docs", "/login/"]:
        response = client.get(path)
        assert response.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
        assert assets and not [url for url in assets if url.startswith(("http:", "https:", "//"))]


def test_config_sections_do_not_share_defaults_and_check_toml_types(tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.delenv("CHATON_DATA_DIR", raising=False)
    first, second = config.Config(), config.Config()
    first.directory.voting_kinds.append("support")
    first.trusted_proxies.append("127.0.0.1")
    assert second.directory.voting_kinds == ["regular"] and second.trusted_proxies == []
    assert first.ldap is not second.ldap
    bad = tmp_path / "types.toml"
    bad.write_text('[directory]\nvoting_delay_days = "ten"\n')
    with pytest.raises(config.ConfigError, match=r"directory\.voting_delay_days"):
        config.load(bad)
    bad.write_text("[ldap]\nmanaged = 1\n")
    with pytest.raises(config.ConfigError, match=r"ldap\.managed"):
        config.load(bad)
    good = tmp_path / "good.toml"
    good.write_text('data_dir = "/srv/chaton"\n[ldap]\ntimeout = 3\n')
    loaded = config.load(good)
    assert str(loaded.data_dir) == "/srv/chaton" and loaded.ldap.timeout == 3


def test_ssh_keys_path_does_not_import_inspect() -> None:
    import subprocess
    import sys

    code = "import sys, chaton.cli.sshkeys; print('inspect' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_a_command_silent_past_its_idle_timeout_is_stopped_and_says_what_it_said() -> None:
    import time as time_module

    started = time_module.monotonic()
    with pytest.raises(runner.CommandStalled) as stalled:
        runner.stream(["sh", "-c", "echo 'disk full' >&2; exec sleep 30"], timeout=60,
                      idle_timeout=1)
    assert time_module.monotonic() - started < 10
    assert "disk full" in stalled.value.stderr
    # A command that keeps talking is not stalled, however long it runs past the idle limit.
    lines: list[str] = []
    completed = runner.stream(
        ["sh", "-c", "for n in 1 2 3 4 5 6; do echo $n; sleep 0.4; done"], timeout=60,
        idle_timeout=1, on_line=lines.append)
    assert completed.returncode == 0 and lines == ["1", "2", "3", "4", "5", "6"]
    kept = runner.stream(["sh", "-c", "echo one; echo two"], timeout=60, idle_timeout=5)
    assert kept.stdout == "one\ntwo\n"


def test_a_command_that_repeats_the_same_status_past_its_idle_timeout_is_stopped() -> None:
    """restic 0.14, deadlocked on a full disk, may go on printing the same figures."""
    import time as time_module

    def mark(line: str) -> object:
        return line if line.startswith("status") else None

    started = time_module.monotonic()
    with pytest.raises(runner.CommandStalled):
        runner.stream(["sh", "-c", "for n in $(seq 100); do echo 'status 5'; sleep 0.2; done"],
                      timeout=60, idle_timeout=1, on_line=lambda line: None,
                      progress_mark=mark)
    assert time_module.monotonic() - started < 10
    # Figures that move are progress; other lines always are.
    lines: list[str] = []
    completed = runner.stream(
        ["sh", "-c", "for n in 1 2 3 4 5 6; do echo status $n; echo other; echo other; "
                     "sleep 0.4; done"],
        timeout=60, idle_timeout=1, on_line=lines.append, progress_mark=mark)
    assert completed.returncode == 0 and len(lines) == 18
