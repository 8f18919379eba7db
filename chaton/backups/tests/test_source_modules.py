"""A backup source is one module: its Params model makes the form, the API schema, the CLI
help and the encryption of its secrets; kinds are found in the folder.

A made-up kind, ``sample``, is put among the found kinds for these tests: it
reaches every interface without a line of per-kind code anywhere else.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from django.urls import reverse
from typer.testing import CliRunner

from chaton.adapters.docker import ObjectNotFound, use_docker
from chaton.adapters.docker.fake import FakeEngine
from chaton.adapters.restic.fake import FakeRestic
from chaton.backups import actions, engine, sources
from chaton.backups.forms import SourceForm
from chaton.backups.models import Source
from chaton.backups.sources import (
    BackupContext,
    BackupResult,
    DataSource,
    Param,
    ResticClient,
    SourceParams,
    Verification,
    kind_class,
    kinds,
)
from chaton.backups.sources.base import RequiredText, Text, param_specs
from chaton.backups.sources.docker_volume import DockerVolumeSource
from chaton.cli.app import app
from chaton.core.actions import do_create_api_token
from chaton.core.errors import InvalidInput
from chaton.directory import actions as directory_actions
from chaton.testing.second_factor import login_with_second_factor

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db


class SampleParams(SourceParams):
    bucket: Annotated[RequiredText, Param("Bucket", "Where the samples live.")]
    token: Annotated[Text, Param("Access token", "Stored encrypted.", secret=True)] = ""
    copies: Annotated[int, Param("Copies")] = 2
    folders: Annotated[list[str], Param("Folders")] = []


class SampleSource(DataSource):
    """A kind only these tests know."""

    kind = "sample"
    label = "Sample store"
    Params = SampleParams
    evidence_codes = {"sample_shelves": "shelves of %(bucket)s"}

    def backup(self, context: BackupContext) -> BackupResult:
        raise NotImplementedError

    def restore_in_place(self, restic: ResticClient, snapshot_id: str) -> str:
        raise NotImplementedError

    def drill(self, restic: ResticClient, snapshot_id: str, fingerprint: Any,
              scratch: Path) -> Verification:
        raise NotImplementedError


@pytest.fixture
def sample_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    kinds()  # found first, then the made-up one added
    monkeypatch.setitem(sources._kinds, "sample", SampleSource)
    yield


@pytest.fixture
def plan(fake_restic: FakeRestic):
    repository = actions.do_create_repository("offsite", kind="local", location="/srv/repo",
                                              password=PASSWORD, acting_user=None)
    return actions.do_create_plan("nightly", repository, acting_user=None)


@pytest.fixture
def admin(directory):
    return directory_actions.do_create_account("camille", acting_user=None,
                                               display_name="Camille Admin",
                                               email="camille@example.org", is_admin=True)


# -- discovery ---------------------------------------------------------------------------


def test_every_module_of_the_folder_is_a_kind_and_nothing_else_lists_them() -> None:
    modules = {module.name for module in pkgutil.iter_modules(sources.__path__)} - {"base"}
    assert {source.__module__.rsplit(".", 1)[1] for source in kinds().values()} == modules
    assert all(kind_class(kind).kind == kind for kind in kinds())
    assert not hasattr(sources, "KINDS")


def test_source_kind_is_a_plain_field_so_a_new_kind_needs_no_migration() -> None:
    assert not Source._meta.get_field("kind").choices


# -- parameters ----------------------------------------------------------------------------


def test_the_model_checks_parameters_and_names_the_faulty_one(sample_kind: None) -> None:
    assert kind_class("sample").clean_params({"bucket": " shelf ", "copies": "3"}) == {
        "bucket": "shelf", "token": "", "copies": 3, "folders": []}
    for params, field in (({}, "bucket"), ({"bucket": "a\nb"}, "bucket"),
                          ({"bucket": "x", "copies": "many"}, "copies"),
                          ({"bucket": "x", "colour": "red", "age": 2}, "age")):
        with pytest.raises(InvalidInput) as refused:
            kind_class("sample").clean_params(params)
        assert refused.value.field == field, params


def test_secret_fields_of_the_model_are_stored_encrypted_and_never_shown(
        sample_kind: None, plan) -> None:
    source = actions.do_add_source(plan, "sample", "shelf",
                                   {"bucket": "shelf", "token": "tok-secret-value"},
                                   acting_user=None)
    source.refresh_from_db()
    assert source.kind == "sample"
    assert source.params["token"] != "tok-secret-value"
    assert engine.data_source(source).params["token"] == "tok-secret-value"
    assert engine.shown_params("sample", source.params)["token"] == "***"
    assert "tok-secret-value" not in str(source.params)


def test_the_same_model_serves_the_existing_kinds() -> None:
    postgres = {spec.name: spec for spec in param_specs(kind_class("postgres").Params)}
    assert postgres["database"].required and postgres["password"].secret
    assert postgres["port"].shape == "integer" and postgres["port"].default == 5432
    assert [spec.name for spec in param_specs(kind_class("ldap").Params) if spec.secret] == [
        "password"]
    assert param_specs(kind_class("chaton").Params) == []


def test_a_kind_brings_its_own_evidence_codes(sample_kind: None) -> None:
    verification = Verification()
    verification.compare("sample_shelves", 3, 2, bucket="north")
    assert verification.lines == ["shelves of north: expected 3, found 2"]
    with pytest.raises(KeyError):
        verification.compare("sample_shelvs", 3, 3)


# -- the form ------------------------------------------------------------------------------


def test_the_form_is_built_from_each_kind_s_model(sample_kind: None) -> None:
    form = SourceForm()
    assert ("sample", "Sample store") in list(form.fields["kind"].choices)
    assert form.fields["sample-bucket"].label == "Bucket"
    assert form.fields["sample-token"].widget.input_type == "password"
    assert "Default: 2." in str(form.fields["sample-copies"].help_text)
    bound = SourceForm({"kind": "sample", "name": "shelf", "sample-bucket": "shelf",
                        "sample-folders": "a\n\nb\n", "postgres-database": "ignored"})
    assert bound.is_valid(), bound.errors
    assert bound.params() == {"bucket": "shelf", "folders": ["a", "b"]}


def test_a_new_kind_is_added_from_the_page_and_its_errors_land_on_its_fields(
        client, admin, sample_kind: None, plan, english: None) -> None:
    login_with_second_factor(client, admin)
    url = reverse("backup-source-add", args=["nightly"])
    content = client.get(url).content.decode()
    assert "kinds-sample" in content and 'name="sample-bucket"' in content
    assert 'type="radio" name="kind" value="sample"' in content

    refused = client.post(url, {"kind": "sample", "name": "shelf", "sample-copies": "3",
                                "sample-token": "tok-secret-value"})
    assert refused.context["form"].errors["sample-bucket"]
    assert "tok-secret-value" not in refused.content.decode()

    client.post(url, {"kind": "sample", "name": "shelf", "sample-bucket": "shelf",
                      "sample-token": "tok-secret-value"})
    source = Source.objects.get(name="shelf")
    assert engine.data_source(source).params == {"bucket": "shelf", "token": "tok-secret-value",
                                                 "copies": 2, "folders": []}


# -- the API -------------------------------------------------------------------------------


def test_the_api_schema_lists_each_kind_s_parameters_and_refuses_with_the_field(
        client, admin, sample_kind: None, plan) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    source_in = schema["components"]["schemas"]["SourceIn"]["properties"]
    variants = {variant["title"]: variant for variant in source_in["params"]["anyOf"]}
    assert set(variants) == set(kinds())
    assert "sample" in source_in["kind"]["description"]
    assert variants["postgres"]["required"] == ["database"]
    assert variants["postgres"]["properties"]["password"]["writeOnly"] is True
    assert variants["sample"]["properties"]["bucket"]["description"] == "Where the samples live."

    _token, key = do_create_api_token(admin, "tests", acting_user=None)
    headers = {"Authorization": f"Bearer {key}", "Accept-Language": "en"}
    refused = client.post("/api/v1/backups/plans/nightly/sources",
                          {"kind": "sample", "name": "shelf", "params": {"copies": 3}},
                          content_type="application/json", headers=headers)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid" and refused.json()["field"] == "bucket"
    added = client.post("/api/v1/backups/plans/nightly/sources",
                        {"kind": "sample", "name": "shelf",
                         "params": {"bucket": "shelf", "token": "tok-secret-value"}},
                        content_type="application/json", headers=headers)
    assert added.status_code == 201
    assert added.json()["params"]["token"] == "***"


# -- the CLI -------------------------------------------------------------------------------


def test_the_cli_help_lists_each_kind_s_parameters(sample_kind: None, english: None) -> None:
    result = CliRunner().invoke(app, ["backup", "source", "add", "--help"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    for kind in kinds():
        assert f"{kind} (" in result.output
    assert "bucket (required): Where the samples live." in result.output
    assert "token (secret" in result.output
    assert "port (default 5432, a number)" in result.output


def test_the_cli_adds_a_new_kind_with_list_parameters(sample_kind: None, plan,
                                                      english: None) -> None:
    result = CliRunner().invoke(app, ["backup", "source", "add", "nightly", "shelf",
                                      "--kind", "sample", "--param", "bucket=shelf",
                                      "--param", "folders=a", "--param", "folders=b"])
    assert result.exit_code == 0, result.output
    assert Source.objects.get(name="shelf").params["folders"] == ["a", "b"]


# -- a Docker volume, through the Docker adapter --------------------------------------------


def test_a_docker_volume_is_found_through_the_docker_adapter(monkeypatch, tmp_path) -> None:
    folder = tmp_path / "volume"
    folder.mkdir()
    (folder / "pad.db").write_text("pads")
    fake = FakeEngine(mountpoints={"pads-data": str(folder)})
    reached: list[str] = []

    def connect(url: str) -> FakeEngine:
        reached.append(url)
        return fake

    with use_docker(connect):
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        params = DockerVolumeSource.clean_params({"volume": "pads-data"})
        assert params == {"volume": "pads-data", "engine": ""}
        source = DockerVolumeSource("pads", params)
        assert source.mountpoint() == str(folder)
        assert reached == ["unix:///var/run/docker.sock"]

        restic = FakeRestic()
        result = source.backup(BackupContext(restic=restic, tags=["chaton"], host="unit"))
        assert result.fingerprint["volume"] == "pads-data"
        assert result.fingerprint["paths"] == [str(folder)]

        monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:23750")
        missing = DockerVolumeSource("gone", {"volume": "gone"})
        with pytest.raises(ObjectNotFound):
            missing.mountpoint()
        assert reached[-1] == "tcp://127.0.0.1:23750"
