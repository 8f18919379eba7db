"""An access a decision granted stays until a decision takes it away: not by renaming its
group out from under it (then removing the access, or deleting the group, under the new
name)."""

from __future__ import annotations

import pytest

from chaton.directory import actions as directory_actions
from chaton.directory.models import Group, GroupMembership
from chaton.governance import actions
from chaton.governance.models import Status
from chaton.governance.tests.test_api import api_for, assert_error, make_account, make_member
from chaton.testing.second_factor import enroll
from chaton.testing.voters import own_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def people(directory):
    found = {"wren": make_account("wren", is_admin=True), "kim": make_account("kim")}
    for uid in ("aubin", "brune", "cyan"):
        found[uid] = make_member(uid)
    enroll(found["wren"])
    directory_actions.do_create_group("tech", acting_user=None)
    decision = actions.do_propose("Kim joins tech", [
        {"type": "group.grant", "params": {"group": "tech", "account": "kim"}}],
        acting_user=found["aubin"])
    for voter in ("aubin", "brune"):
        actions.do_vote(decision, "for", acting_user=found[voter],
                        credential=own_session(found[voter]))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    [row] = actions.execute_decisions()
    assert row.status == "done", row.message
    return found


def test_a_group_holding_an_access_a_decision_granted_is_renamed_by_decision_only(
        client, people):
    api = api_for(client, people["wren"])
    error = assert_error(api.call("patch", "/groups/tech", {"name": "tech2"}), 403,
                         "decision_required")
    assert "operation=group.rename" in error["message"]
    assert Group.objects.filter(name="tech").exists()
    assert not Group.objects.filter(name="tech2").exists()
    # So the access is still the decision's: removing it, or the group, takes one too.
    assert_error(api.delete("/groups/tech/members/kim"), 403, "decision_required")
    assert_error(api.delete("/groups/tech"), 403, "decision_required")
    assert GroupMembership.objects.filter(group__name="tech", account__uid="kim").exists()


def test_an_ordinary_group_without_decided_accesses_is_renamed_directly(client, people):
    directory_actions.do_create_group("design", acting_user=None)
    api = api_for(client, people["wren"])
    renamed = api.call("patch", "/groups/design", {"name": "graphics"})
    assert renamed.status_code == 200, renamed.content
