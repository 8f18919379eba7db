"""The services' lookups: a host, the default host, an instance, an application, an owner.

The pages, the API, the CLI and the ``service.open`` / ``service.close``
operations find them through these, with one message each.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chaton.core.errors import InvalidInput, NotFound
from chaton.members import actions as members_actions
from chaton.services import actions, queries
from chaton.services.models import Host

pytestmark = pytest.mark.django_db


def test_a_host_is_found_by_its_name_and_the_default_when_none_is_named(host: Host) -> None:
    assert queries.host_by_name("box") == host
    assert queries.host_by_name(" box ") == host
    with pytest.raises(InvalidInput) as missing:
        queries.host_or_default(None)
    assert (str(missing.value), missing.value.field) == (
        "There is no default host: name one.", "host")
    actions.do_update_host(host, acting_user=None, is_default=True)
    assert queries.host_or_default(None) == host
    assert queries.host_or_default("") == host
    assert queries.host_or_default("box") == host
    with pytest.raises(NotFound, match=re.escape("No host is named “nowhere”.")) as missing:
        queries.host_or_default("nowhere")
    assert missing.value.field == "host"


def test_an_application_and_an_owner_are_found_by_their_names(host: Host) -> None:
    assert queries.manifest_by_name("webtest").name == "webtest"
    with pytest.raises(NotFound) as missing:
        queries.manifest_by_name("nothing")
    assert str(missing.value) == "There is no application nothing in the catalogue."
    radio = members_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                                   slug="radio-ourse", acting_user=None)
    assert queries.owner_by_key("radio-ourse", None) == radio
    assert queries.owner_by_key(None, None) is None
    with pytest.raises(InvalidInput, match=re.escape("one owner")):
        queries.owner_by_key("radio-ourse", "someone@example.org")
    with pytest.raises(NotFound) as missing:
        queries.owner_by_key(None, "someone@example.org")
    assert str(missing.value) == "No person has the email “someone@example.org”."


@pytest.mark.parametrize(("lookup", "key", "field"), [
    (queries.host_by_name, "b\x00x", "host"),
    (queries.host_by_name, "   ", "host"),
    (queries.instance_by_slug, "pa\x00d", "slug"),
    (queries.instance_by_slug, "x" * 300, "slug"),
])
def test_a_name_that_cannot_be_one_is_not_found_without_a_query(host: Host, lookup, key,
                                                                field) -> None:
    with CaptureQueriesContext(connection) as seen, pytest.raises(NotFound) as missing:
        lookup(key)
    assert len(seen) == 0
    assert missing.value.field == field


def test_the_instance_page_of_an_unknown_instance_is_not_found(client, host: Host) -> None:
    from chaton.directory import actions as directory_actions
    from chaton.testing.second_factor import login_with_second_factor

    admin = directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                                email="wren@example.org", is_admin=True)
    login_with_second_factor(client, admin)
    for response in (client.get("/services/instances/nothing/"),
                     client.post("/services/instances/nothing/settings/", {})):
        assert response.status_code == 404
        assert "404.html" in [template.name for template in response.templates]
