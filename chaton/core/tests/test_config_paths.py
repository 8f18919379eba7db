"""Relative paths in the configuration are read from the file's folder, not from the
working directory of whoever runs ``chaton`` (sshd runs ``chaton ssh-keys`` in ``/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaton.project import config


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from another folder than the file's, with no CHATON_* path variable."""
    for name in ("CHATON_DATA_DIR", "CHATON_CONFIG", "CHATON_LDAP_BIND_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    working = tmp_path / "working"
    working.mkdir()
    monkeypatch.chdir(working)
    return working


def _file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "chaton.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_in_a_file_are_read_from_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    loaded = config.load(_file(folder, 'data_dir = "data"\n[ldap]\n'
                                       'bind_password_file = "secret"\n'))
    assert loaded.data_dir == (folder / "data").resolve()
    assert loaded.ldap.bind_password_file == str(folder / "secret")
    assert loaded.file == (folder / "chaton.toml").resolve()
    assert not loaded.data_dir_from_working_directory


def test_the_default_data_dir_sits_beside_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    loaded = config.load(_file(folder, "[ldap]\nmanaged = true\n"))
    assert loaded.data_dir == (folder / "var").resolve()
    assert not loaded.data_dir_from_working_directory


def test_absolute_paths_stay_as_written(tmp_path: Path) -> None:
    loaded = config.load(_file(tmp_path / "etc", 'data_dir = "/srv/chaton"\n[ldap]\n'
                                                 'bind_password_file = "/etc/secret"\n'))
    assert str(loaded.data_dir) == "/srv/chaton"
    assert loaded.ldap.bind_password_file == "/etc/secret"


def test_without_a_file_or_with_a_relative_variable_the_working_directory_counts(
        _elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = config.load()
    assert loaded.file is None
    assert loaded.data_dir == (_elsewhere / "var").resolve()
    assert loaded.data_dir_from_working_directory
    # A relative variable belongs to the process that set it: its working directory.
    monkeypatch.setenv("CHATON_DATA_DIR", "state")
    loaded = config.load(_file(tmp_path / "etc", ""))
    assert loaded.data_dir == (_elsewhere / "state").resolve()
    assert loaded.data_dir_from_working_directory
    monkeypatch.setenv("CHATON_DATA_DIR", str(tmp_path / "absolute"))
    assert not config.load().data_dir_from_working_directory
