"""For any sequence of direct actions by an administrator, the members of a protected group
change only through executed decisions (property-based, with Hypothesis).

A step is a direct action — whatever an administrator may call from a page,
the API or the CLI — or the execution of a decision the members adopted.
After every direct step, each group that was protected before it still
exists under its name, still protected, with the same members, and no group
appeared under a name a protected group bore. Only a decision step may change
them; the model then follows it.

The action set is open: register another direct action with :func:`direct`
(a function of the world and the drawn arguments, that may raise a
ChatonError), and the property covers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chaton.core.errors import ChatonError
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account, Group
from chaton.governance import actions
from chaton.governance.models import Status
from chaton.governance.tests.conftest import make_voter
from chaton.testing.voters import own_session

pytestmark = pytest.mark.django_db

#: Group names drawn: few, so that sequences collide (delete, re-create, rename into).
NAMES = ("passwords", "vault", "tech", "spare")
UIDS = ("kim", "victor", "boss")


@dataclass
class World:
    admin: Account
    voters: list[Account]
    #: The names a direct action may not give to a new group: those of protected groups,
    #: and of protected groups that went away (a decision's clearing of a mark frees it).
    protected_names: set[str] = field(default_factory=set)


Step = Callable[[World, str, str, str], None]
DIRECT: dict[str, Step] = {}


def direct(name: str) -> Callable[[Step], Step]:
    """Register a direct action: ``step(world, group, other_group, uid)``."""
    def register(step: Step) -> Step:
        DIRECT[name] = step
        return step
    return register


def _group(name: str) -> Group:
    return Group.objects.get(name=name)


@direct("create")
def _create(world: World, name: str, _other: str, _uid: str) -> None:
    directory_actions.do_create_group(name, acting_user=world.admin)


@direct("create protected")
def _create_protected(world: World, name: str, _other: str, _uid: str) -> None:
    directory_actions.do_create_group(name, acting_user=world.admin, requires_decision=True)


@direct("delete")
def _delete(world: World, name: str, _other: str, _uid: str) -> None:
    directory_actions.do_delete_group(_group(name), acting_user=world.admin)


@direct("rename")
def _rename(world: World, name: str, other: str, _uid: str) -> None:
    directory_actions.do_rename_group(_group(name), other, acting_user=world.admin)


@direct("unprotect")
def _unprotect(world: World, name: str, _other: str, _uid: str) -> None:
    directory_actions.do_update_group(_group(name), acting_user=world.admin,
                                      requires_decision=False)


@direct("protect")
def _protect(world: World, name: str, _other: str, _uid: str) -> None:
    directory_actions.do_update_group(_group(name), acting_user=world.admin,
                                      requires_decision=True)


@direct("add")
def _add(world: World, name: str, _other: str, uid: str) -> None:
    directory_actions.do_add_to_group(_group(name), Account.objects.get(uid=uid),
                                      acting_user=world.admin)


@direct("remove")
def _remove(world: World, name: str, _other: str, uid: str) -> None:
    directory_actions.do_remove_from_group(_group(name), Account.objects.get(uid=uid),
                                           acting_user=world.admin)


@direct("ordinary action")
def _act(world: World, name: str, _other: str, uid: str) -> None:
    """An administrator's ordinary action carrying a group operation."""
    actions.do_act("At once", [{"type": "group.grant",
                                "params": {"group": name, "account": uid}}],
                   acting_user=world.admin)


DECISIONS = ("group.grant", "group.revoke", "group.delete", "group.unprotect")


def _decide(world: World, operation: str, name: str, uid: str) -> None:
    """The members adopt and execute one operation (a step allowed to change things)."""
    params: dict[str, Any] = {"group": name}
    if operation in ("group.grant", "group.revoke"):
        params["account"] = uid
    try:
        decision = actions.do_propose("Decided", [{"type": operation, "params": params}],
                                      acting_user=world.voters[0])
    except ChatonError:
        return  # not a valid proposal now (no such group …)
    for voter in world.voters[:3]:
        actions.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    decision.refresh_from_db()
    assert decision.status == Status.ADOPTED
    actions.execute_decisions(decision_id=decision.pk)


def protected_state() -> dict[str, tuple[bool, frozenset[str]]]:
    return {group.name: (group.requires_decision,
                         frozenset(group.memberships.values_list("account__uid", flat=True)))
            for group in Group.objects.prefetch_related("memberships")}


#: A name drawn: the protected one half of the time, so that attacks on it are frequent.
names = st.one_of(st.just("passwords"), st.sampled_from(NAMES))
steps = st.lists(st.one_of(
    st.tuples(st.just("direct"), st.sampled_from(sorted(DIRECT)), names, names,
              st.sampled_from(UIDS)),
    st.tuples(st.just("decision"), st.sampled_from(DECISIONS), names, names,
              st.sampled_from(UIDS)),
), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=steps)
# The bypasses that were found by hand, always tried first.
@example(sequence=[("direct", "delete", "passwords", "", "kim"),
                   ("direct", "create", "passwords", "", "kim"),
                   ("direct", "add", "passwords", "", "victor")])
@example(sequence=[("direct", "rename", "passwords", "vault", "kim"),
                   ("direct", "create", "passwords", "", "kim")])
@example(sequence=[("direct", "unprotect", "passwords", "", "kim"),
                   ("direct", "remove", "passwords", "", "kim")])
@example(sequence=[("decision", "group.delete", "passwords", "", "kim"),
                   ("direct", "create protected", "passwords", "", "kim"),
                   ("direct", "rename", "tech", "passwords", "kim")])
@example(sequence=[("decision", "group.grant", "tech", "", "kim"),
                   ("direct", "protect", "tech", "", "kim"),
                   ("direct", "remove", "tech", "", "kim")])
def test_protected_groups_change_only_through_executed_decisions(directory, sequence) -> None:
    with transaction.atomic():
        admin = directory_actions.do_create_account("boss", acting_user=None,
                                                    display_name="Boss",
                                                    email="boss@example.org", is_admin=True)
        voters = [make_voter(uid) for uid in ("ana", "bo", "cy", "di")]
        for uid in ("kim", "victor"):
            directory_actions.do_create_account(uid, acting_user=None, display_name=uid,
                                                email=f"{uid}@example.org")
        passwords = directory_actions.do_create_group("passwords", acting_user=None)
        directory_actions.do_add_to_group(passwords, Account.objects.get(uid="kim"),
                                          acting_user=None)
        directory_actions.do_update_group(passwords, acting_user=None, requires_decision=True)
        world = World(admin, voters, protected_names={"passwords"})
        for kind, what, name, other, uid in sequence:
            before = protected_state()
            if kind == "decision":
                _decide(world, what, name, uid)
            else:
                try:
                    with transaction.atomic():
                        DIRECT[what](world, name, other, uid)
                except (ChatonError, Group.DoesNotExist):
                    pass
                after = protected_state()
                for group_name, (protected, members) in before.items():
                    if protected:
                        assert after.get(group_name) == (True, members), (
                            what, name, other, uid, before, after)
                for group_name in set(after) - set(before):
                    assert group_name not in world.protected_names, (what, name, other, after)
            now = protected_state()
            if kind == "decision":  # the members may have cleared a mark
                world.protected_names -= {group_name for group_name, (protected, _members)
                                          in now.items() if not protected}
            world.protected_names |= {group_name for group_name, (protected, _members)
                                      in now.items() if protected}
        transaction.set_rollback(True)
