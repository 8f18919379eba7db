"""Who runs the default host's engine: Docker's service under systemd, else a dockerd of
Chaton's own (``services.docker_managed``); and what people are told when an engine does
not answer. The real dockerd is in tests/integration/test_managed_dockerd.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from chaton.adapters.dockerd import engine_answers
from chaton.project.config import ConfigError, ServicesConfig
from chaton.services import engine


@pytest.fixture
def services_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ServicesConfig:
    config = ServicesConfig()
    config.docker_url = f"unix://{tmp_path / 'nothing.sock'}"
    monkeypatch.setattr(settings.CHATON, "services", config)
    return config


def test_auto_starts_a_dockerd_only_where_nothing_answers_and_no_systemd_runs(
        services_config: ServicesConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "systemd_runs", lambda: False)
    assert services_config.docker_managed == "auto" and engine.should_manage()
    monkeypatch.setattr(engine, "systemd_runs", lambda: True)
    assert not engine.should_manage()  # Docker's own service is the engine there
    services_config.docker_managed = "yes"
    assert engine.should_manage()
    services_config.docker_managed = "no"
    monkeypatch.setattr(engine, "systemd_runs", lambda: False)
    assert not engine.should_manage()
    services_config.docker_managed, services_config.docker_url = "auto", "tcp://192.0.2.5:2376"
    assert not engine.should_manage()  # another machine's engine is not ours to start
    services_config.docker_managed = "sometimes"
    with pytest.raises(ConfigError, match="auto, yes or no"):
        engine.should_manage()


def test_the_managed_dockerd_lives_in_the_data_directory_unless_told_otherwise(
        services_config: ServicesConfig) -> None:
    dockerd = engine.managed_dockerd()
    folder = Path(settings.DATA_DIR) / "docker"
    assert dockerd.url == services_config.docker_url
    assert (dockerd.data_root, dockerd.exec_root) == (folder / "data", folder / "exec")
    services_config.docker_data_root = "/var/lib/docker"
    services_config.docker_exec_root = "/var/run/docker"
    services_config.docker_arguments = ["--iptables=false"]
    dockerd = engine.managed_dockerd()
    assert (str(dockerd.data_root), str(dockerd.exec_root)) == ("/var/lib/docker",
                                                                "/var/run/docker")
    assert dockerd.command()[-1] == "--iptables=false"
    services_config.docker_url = "ssh://root@192.0.2.5"
    with pytest.raises(ConfigError, match="unix:///path"):
        engine.managed_dockerd()


def test_what_to_do_about_an_engine_that_does_not_answer(
        monkeypatch: pytest.MonkeyPatch, english: None) -> None:
    monkeypatch.setattr(engine, "systemd_runs", lambda: True)
    assert "systemctl enable --now docker" in engine.unreachable_advice(
        "unix:///var/run/docker.sock", is_default=True)
    monkeypatch.setattr(engine, "systemd_runs", lambda: False)
    assert "docker_managed" in engine.unreachable_advice("unix:///var/run/docker.sock",
                                                         is_default=True)
    assert "firewall" in engine.unreachable_advice("tcp://192.0.2.5:2376", is_default=False)
    assert not engine_answers("tcp://192.0.2.5:2376")


def test_serve_reports_a_dockerd_that_cannot_start_in_one_line_and_goes_on(
        services_config: ServicesConfig, capsys: pytest.CaptureFixture[str],
        english: None, tmp_path: Path) -> None:
    from chaton.cli.server import start_managed_dockerd

    services_config.docker_managed = "no"
    assert start_managed_dockerd() is None
    assert capsys.readouterr().err == ""
    services_config.docker_managed = "yes"
    services_config.docker_url = "tcp://192.0.2.5:2376"
    assert start_managed_dockerd() is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chaton: warning: the Docker engine did not "
                                                   "start"), lines
