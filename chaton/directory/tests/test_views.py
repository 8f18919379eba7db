"""Self-service and directory administration pages: Django's test client, the fake LDAP."""

import base64
import datetime as dt
import struct

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from chaton.adapters.ldap import normalize_dn
from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions, reconcile
from chaton.directory.models import Account, AccountState, Group, GroupMembership, SSHKey
from chaton.members import actions as member_actions
from chaton.testing.second_factor import login_with_second_factor

BASE = "dc=chaton,dc=test"
PASSWORD = "purple kettle 1984"
pytestmark = pytest.mark.django_db(transaction=True)


def ssh_key_line(seed=1, comment="noa@laptop"):
    """Return a well-formed ed25519 public key line (its 32 key bytes are made up)."""
    blob = (struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32)
            + bytes((seed + index) % 256 for index in range(32)))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


@pytest.fixture
def client(client):
    """The test client, reading pages in English (the source language of the messages)."""
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture(autouse=True)
def _every_test_uses_the_fake_directory(directory):
    return directory


@pytest.fixture
def member():
    return actions.do_create_account("noa", acting_user=None, display_name="Noa Martin",
                                     email="noa@example.org", password=PASSWORD)


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def admin():
    return actions.do_create_account("camille", acting_user=None, display_name="Camille Admin",
                                     email="camille@example.org", is_admin=True)


@pytest.fixture
def admin_client(client, admin):
    login_with_second_factor(client, admin)
    return client


# -- login, profile ------------------------------------------------------------


def test_home_redirects_to_login_then_to_profile(client, member):
    assert client.get("/")["Location"] == reverse("login")
    page = client.get(reverse("login"))
    assert page.status_code == 200 and 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(reverse("login"), {"username": "noa", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    assert client.get("/")["Location"] == reverse("profile")


def test_wrong_password_is_refused(client, member):
    response = client.post(reverse("login"), {"username": "noa", "password": "wrong"})
    assert response.status_code == 200
    assert response.context["form"].errors
    assert 'value="noa"' in response.content.decode()


@pytest.mark.parametrize("change", ["expired", "disabled"])
def test_expired_or_disabled_account_cannot_log_in(client, member, change):
    if change == "expired":
        actions.do_update_account(member, acting_user=None,
                                  expires_at=clock.now() + dt.timedelta(minutes=1))
        clock.travel(dt.timedelta(minutes=2))
    else:
        actions.do_set_state(member, AccountState.DISABLED, acting_user=None)
    try:
        response = client.post(reverse("login"), {"username": "noa", "password": PASSWORD})
    finally:
        clock.travel(dt.timedelta(0))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_profile_shows_groups_with_their_expiry(member_client, member):
    tech = actions.do_create_group("tech", acting_user=None, description="Tech team")
    expiry = clock.now() + dt.timedelta(days=40)
    actions.do_add_to_group(tech, member, acting_user=None, expires_at=expiry)
    actions.do_update_account(member, acting_user=None,
                              expires_at=clock.now() + dt.timedelta(days=365))
    content = member_client.get(reverse("profile")).content.decode()
    assert "noa" in content and "Noa Martin" in content and "noa@example.org" in content
    assert "Tech team" in content
    assert timezone.localdate(expiry).isoformat() in content


def test_display_name_is_escaped_on_profile_and_account_list(client, admin_client):
    account = actions.do_create_account("mallory", acting_user=None,
                                        display_name="<script>alert(1)</script>",
                                        email="mallory@example.org")
    content = admin_client.get(reverse("account-list")).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    client.force_login(account)
    assert "<script>alert(1)" not in client.get(reverse("profile")).content.decode()


def test_language_switch_to_english(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/login/"})
    assert response.status_code == 302
    assert client.cookies["django_language"].value == "en"


# -- password ------------------------------------------------------------------


def test_password_change_reaches_the_directory_and_keeps_the_session(member_client, member,
                                                                     directory):
    dn = normalize_dn(f"uid=noa,ou=people,{BASE}")
    before = directory.entries[dn]["userpassword"]
    response = member_client.post(reverse("password-change"), {
        "old_password": PASSWORD, "new_password1": "green teapot 2049",
        "new_password2": "green teapot 2049"})
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    member.refresh_from_db()
    assert member.check_password("green teapot 2049")
    after = directory.entries[dn]["userpassword"]
    assert after != before and after[0].startswith(b"{ARGON2}")
    # Still logged in: the session followed the new password.
    assert member_client.get(reverse("profile")).status_code == 200
    assert AuditLog.objects.filter(action="account.password", actor=member).exists()


@pytest.mark.parametrize(("old", "new1", "new2", "field", "message"), [
    ("not my password", "green teapot 2049", "green teapot 2049", "old_password",
     "not your current password"),
    (PASSWORD, "green teapot 2049", "green teapot 2050", "new_password2", "differ"),
    (PASSWORD, "short", "short", "new_password1", "too short"),
])
def test_password_change_errors_sit_next_to_their_field(member_client, member, old, new1, new2,
                                                       field, message):
    response = member_client.post(reverse("password-change"), {
        "old_password": old, "new_password1": new1, "new_password2": new2})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    member.refresh_from_db()
    assert member.check_password(PASSWORD)


# -- SSH keys ------------------------------------------------------------------


def test_bad_ssh_key_gives_a_clear_error_and_writes_nothing(member_client, member, directory):
    audit_rows = AuditLog.objects.count()
    response = member_client.post(reverse("ssh-keys"), {"key": "ssh-ed25519 not*base64 me@x"})
    assert response.status_code == 200
    assert "not valid base64" in response.context["form"].errors["key"][0]
    assert "ssh-ed25519 not*base64 me@x" in response.content.decode()
    assert not SSHKey.objects.exists()
    assert AuditLog.objects.count() == audit_rows
    response = member_client.post(reverse("ssh-keys"), {"key": "hello"})
    assert "This is not an SSH public key" in response.context["form"].errors["key"][0]
    assert not SSHKey.objects.exists()


def test_ssh_key_add_shows_fingerprint_and_remove(member_client, member, directory):
    response = member_client.post(reverse("ssh-keys"), {"key": ssh_key_line()}, follow=True)
    key = SSHKey.objects.get()
    assert key.fingerprint.startswith("SHA256:")
    assert key.fingerprint in response.content.decode()
    entry = directory.entries[normalize_dn(f"uid=noa,ou=people,{BASE}")]
    assert entry["sshpublickey"] == [key.key.encode()]
    duplicate = member_client.post(reverse("ssh-keys"), {"key": ssh_key_line()})
    assert "already on the account" in duplicate.context["form"].errors["key"][0]
    assert member_client.get(reverse("ssh-key-remove", args=[key.pk])).status_code == 405
    member_client.post(reverse("ssh-key-remove", args=[key.pk]))
    assert not SSHKey.objects.exists()


def test_cannot_remove_someone_elses_key(member_client):
    other = actions.do_create_account("eve", acting_user=None, display_name="Eve",
                                      email="eve@example.org")
    key = actions.do_add_ssh_key(other, ssh_key_line(seed=9), acting_user=None)
    assert member_client.post(reverse("ssh-key-remove", args=[key.pk])).status_code == 404
    assert SSHKey.objects.filter(pk=key.pk).exists()


# -- administration: permissions -----------------------------------------------


@pytest.mark.parametrize(("name", "args"), [
    ("account-list", []), ("account-create", []), ("account-detail", ["noa"]),
    ("account-edit", ["noa"]), ("group-list", []), ("group-create", []),
    ("directory-plan", []), ("audit-log", []), ("person-list", []),
])
def test_admin_pages_are_forbidden_to_others(member_client, name, args):
    response = member_client.get(reverse(name, args=args))
    assert response.status_code == 403
    assert "for the collective's administrators" in response.content.decode()


@pytest.mark.parametrize(("name", "args"), [
    ("account-state", ["noa"]), ("account-password", ["noa"]), ("group-create", []),
    ("directory-plan", []),
])
def test_admin_posts_are_forbidden_to_others(member_client, member, name, args):
    response = member_client.post(reverse(name, args=args), {
        "state": "disabled", "new_password1": "x" * 12, "new_password2": "x" * 12,
        "name": "sneaky"})
    assert response.status_code == 403
    member.refresh_from_db()
    assert member.state == AccountState.ACTIVE
    assert not Group.objects.exists()


# -- accounts ------------------------------------------------------------------


def test_create_account_through_the_form(admin_client, admin, directory):
    person = member_actions.do_create_person("Ivo Exemple", "ivo@example.org", acting_user=None)
    response = admin_client.post(reverse("account-create"), {
        "uid": "ivo", "display_name": "Ivo Exemple", "email": "ivo@example.org",
        "person": person.pk, "organization": "", "expires_on": "2030-06-30",
        "new_password1": "blue lantern 77", "new_password2": "blue lantern 77"})
    assert response.status_code == 302
    account = Account.objects.get(uid="ivo")
    assert response["Location"] == reverse("account-detail", args=["ivo"])
    assert account.person == person and account.check_password("blue lantern 77")
    # The account stops working when its last day is over, local time.
    assert timezone.localtime(account.expires_at) == timezone.make_aware(
        dt.datetime(2030, 6, 30))
    assert normalize_dn(f"uid=ivo,ou=people,{BASE}") in directory.entries
    assert AuditLog.objects.filter(action="account.create", actor=admin).exists()


def test_duplicate_uid_error_is_shown_in_the_form(admin_client, member):
    response = admin_client.post(reverse("account-create"), {
        "uid": "noa", "display_name": "Another Noa", "email": "other@example.org",
        "person": "", "organization": "", "expires_on": ""})
    assert response.status_code == 200
    assert "already taken" in response.context["form"].errors["uid"][0]
    content = response.content.decode()
    assert 'value="Another Noa"' in content and 'value="other@example.org"' in content
    assert Account.objects.filter(email="other@example.org").count() == 0


def test_invalid_uid_and_two_owners_are_shown_on_their_fields(admin_client):
    person = member_actions.do_create_person("Pat", "pat@example.org", acting_user=None)
    organization = member_actions.do_create_organization("Partner", "p@example.org",
                                                         acting_user=None)
    response = admin_client.post(reverse("account-create"), {
        "uid": "Bad Name", "display_name": "Pat", "email": "pat@example.org"})
    assert "lower-case letters" in response.context["form"].errors["uid"][0]
    response = admin_client.post(reverse("account-create"), {
        "uid": "pat", "display_name": "Pat", "email": "pat@example.org",
        "person": person.pk, "organization": organization.pk})
    assert "one owner" in response.context["form"].errors["organization"][0]


def test_account_edit_disable_enable_and_set_password(admin_client, member, directory):
    response = admin_client.post(reverse("account-edit", args=["noa"]), {
        "display_name": "Noa M.", "email": "noa@example.org", "expires_on": "", "is_admin": ""})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.display_name == "Noa M."
    dn = normalize_dn(f"uid=noa,ou=people,{BASE}")
    admin_client.post(reverse("account-state", args=["noa"]), {"state": "disabled"})
    member.refresh_from_db()
    assert member.state == AccountState.DISABLED and dn not in directory.entries
    admin_client.post(reverse("account-state", args=["noa"]), {"state": "active"})
    assert dn in directory.entries
    response = admin_client.post(reverse("account-password", args=["noa"]), {
        "new_password1": "brand new secret 9", "new_password2": "brand new secret 9"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password("brand new secret 9")
    response = admin_client.post(reverse("account-password", args=["noa"]), {
        "new_password1": "short", "new_password2": "short"})
    assert response.status_code == 200
    assert "too short" in response.context["password_form"].errors["new_password1"][0]


def test_account_owner_changes_on_the_edit_page(admin_client, member, directory):
    partner = member_actions.do_create_organization("Vélos Partagés du Test",
                                                    "velos@example.org", acting_user=None)
    page = admin_client.get(reverse("account-edit", args=["noa"]))
    assert "organization" in page.context["form"].fields
    response = admin_client.post(reverse("account-edit", args=["noa"]), {
        "display_name": "Noa", "email": "noa@example.org", "organization": partner.pk})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.organization == partner and member.person is None
    entry = directory.entries[normalize_dn(f"uid=noa,ou=people,{BASE}")]
    assert entry["o"] == ["Vélos Partagés du Test".encode()]
    some_person = member_actions.do_create_person("Tessa Exemple", "tessa@example.org",
                                                  acting_user=None)
    response = admin_client.post(reverse("account-edit", args=["noa"]), {
        "display_name": "Noa", "email": "noa@example.org", "organization": partner.pk,
        "person": some_person.pk})
    assert response.status_code == 200
    assert response.context["form"].errors["organization"]
    member.refresh_from_db()
    assert member.organization == partner


def test_admin_cannot_disable_or_demote_themselves(admin_client, admin):
    admin_client.post(reverse("account-state", args=["camille"]), {"state": "disabled"})
    admin.refresh_from_db()
    assert admin.state == AccountState.ACTIVE
    response = admin_client.post(reverse("account-edit", args=["camille"]), {
        "display_name": "Camille", "email": "camille@example.org", "expires_on": ""})
    assert "your own administrator flag" in response.context["form"].errors["is_admin"][0]


def test_account_search(admin_client, member):
    response = admin_client.get(reverse("account-list"), {"q": "martin"})
    assert [account.uid for account in response.context["page"]] == ["noa"]
    response = admin_client.get(reverse("account-list"), {"state": "disabled"})
    assert list(response.context["page"]) == []


def _make_accounts(count, start=0):
    group = Group.objects.filter(name="tech").first() or actions.do_create_group(
        "tech", acting_user=None)
    for number in range(start, start + count):
        person = member_actions.do_create_person(f"Owner {number}", f"o{number}@example.org",
                                                 acting_user=None)
        account = actions.do_create_account(f"user{number}", acting_user=None,
                                            display_name=f"User {number}",
                                            email=f"user{number}@example.org", person=person)
        actions.do_add_to_group(group, account, acting_user=None)


def test_account_list_uses_a_constant_number_of_queries(admin_client,
                                                        django_assert_max_num_queries):
    _make_accounts(2)
    with django_assert_max_num_queries(6) as few:
        admin_client.get(reverse("account-list"))
    _make_accounts(20, start=2)
    with django_assert_max_num_queries(6) as many:
        response = admin_client.get(reverse("account-list"))
    assert "Owner 21" in response.content.decode()
    assert len(few.captured_queries) == len(many.captured_queries)


# -- groups --------------------------------------------------------------------


def test_group_list_uses_a_constant_number_of_queries(admin_client,
                                                      django_assert_max_num_queries):
    def add_groups(count, start=0):
        accounts = list(Account.objects.all())
        for number in range(start, start + count):
            group = actions.do_create_group(f"team{number}", acting_user=None)
            for account in accounts:
                actions.do_add_to_group(group, account, acting_user=None)

    add_groups(2)
    with django_assert_max_num_queries(6) as few:
        admin_client.get(reverse("group-list"))
    add_groups(12, start=2)
    with django_assert_max_num_queries(6) as many:
        response = admin_client.get(reverse("group-list"))
    assert "team13" in response.content.decode()
    assert len(few.captured_queries) == len(many.captured_queries)


def test_group_create_add_member_change_expiry_remove_and_delete(admin_client, member,
                                                                 directory):
    response = admin_client.post(reverse("group-create"), {
        "name": "tech", "kind": "team", "description": "Tech team"})
    assert response.status_code == 302
    duplicate = admin_client.post(reverse("group-create"), {"name": "tech", "kind": "team"})
    assert "already exists" in duplicate.context["form"].errors["name"][0]
    group_dn = normalize_dn(f"cn=tech,ou=groups,{BASE}")
    member_dn = f"uid=noa,ou=people,{BASE}".encode()

    response = admin_client.post(reverse("group-member-add", args=["tech"]), {"uid": "nobody"})
    assert "No account has the user name" in response.context["member_form"].errors["uid"][0]
    response = admin_client.post(reverse("group-member-add", args=["tech"]),
                                 {"uid": "noa", "expires_on": "2001-01-01"})
    assert "already past" in response.context["member_form"].errors["expires_on"][0]

    admin_client.post(reverse("group-member-add", args=["tech"]), {"uid": "noa"})
    assert directory.entries[group_dn]["member"] == [member_dn]
    admin_client.post(reverse("group-member-add", args=["tech"]),
                      {"uid": "noa", "expires_on": "2040-05-01"})
    membership = GroupMembership.objects.get()
    assert membership.expires_at is not None
    page = admin_client.get(reverse("group-detail", args=["tech"])).content.decode()
    assert "2040-05-01" in page

    admin_client.post(reverse("group-member-remove", args=["tech", "noa"]))
    assert not GroupMembership.objects.exists()

    confirm = admin_client.get(reverse("group-delete", args=["tech"]))
    assert confirm.status_code == 200 and "Delete the group tech?" in confirm.content.decode()
    assert Group.objects.filter(name="tech").exists()
    admin_client.post(reverse("group-delete", args=["tech"]))
    assert not Group.objects.filter(name="tech").exists()
    assert group_dn not in directory.entries


# -- directory plan, audit log -------------------------------------------------


def test_directory_plan_shows_changes_and_applies_them(admin_client, member, directory):
    foreign = f"uid=stranger,ou=people,{BASE}"
    reconcile.sync_all()
    directory.apply([reconcile.Change("add", foreign, {"objectclass": [b"account"]})])
    del directory.entries[normalize_dn(f"uid=noa,ou=people,{BASE}")]
    content = admin_client.get(reverse("directory-plan")).content.decode()
    assert "+ uid=noa,ou=people,dc=chaton,dc=test" in content
    assert "? uid=stranger,ou=people,dc=chaton,dc=test (not Chaton&#x27;s: kept)" in content
    response = admin_client.post(reverse("directory-plan"), {}, follow=True)
    assert "1 change was applied." in response.content.decode()
    assert normalize_dn(f"uid=noa,ou=people,{BASE}") in directory.entries
    assert normalize_dn(foreign) in directory.entries


def test_directory_plan_says_when_ldap_is_down(admin_client, directory):
    directory.available = False
    response = admin_client.get(reverse("directory-plan"))
    assert response.status_code == 200
    assert "could not be read" in response.content.decode()
    response = admin_client.post(reverse("directory-plan"), {}, follow=True)
    assert "could not be reached" in response.content.decode()


def test_audit_log_lists_and_filters(admin_client, member, django_assert_max_num_queries):
    actions.do_create_group("tech", acting_user=None)
    with django_assert_max_num_queries(6):
        content = admin_client.get(reverse("audit-log")).content.decode()
    assert "account.create" in content and "group.create" in content
    response = admin_client.get(reverse("audit-log"), {"action": "group.create"})
    assert {entry.action for entry in response.context["page"]} == {"group.create"}


def test_password_change_with_directory_down_is_saved_and_says_so(member_client, member,
                                                                   directory):
    directory.available = False
    response = member_client.post(reverse("password-change"), {
        "old_password": PASSWORD, "new_password1": "green teapot 2049",
        "new_password2": "green teapot 2049"}, follow=True)
    content = response.content.decode()
    assert "Your password was changed." in content and "catching up" in content
    member.refresh_from_db()
    assert member.check_password("green teapot 2049")


# -- groups whose members are added by decision only ---------------------------


def test_group_marked_by_decision_only_is_shown_and_set(admin_client, member):
    response = admin_client.post(reverse("group-create"), {
        "name": "passwords", "kind": "team", "description": "Technical passwords",
        "requires_decision": "on"})
    assert response.status_code == 302
    assert Group.objects.get(name="passwords").requires_decision
    assert "by decision only" in admin_client.get(reverse("group-list")).content.decode()
    page = admin_client.get(reverse("group-detail", args=["passwords"])).content.decode()
    assert "Members added by decision only" in page and "Propose adding a member" in page
    assert "/decisions/new/?operation=group.grant&amp;group=passwords" in page
    form = admin_client.get(reverse("group-edit", args=["passwords"])).context["form"]
    assert form.initial["requires_decision"] is True
    # Marking an unmarked group needs no decision.
    actions.do_create_group("tech", acting_user=None)
    admin_client.post(reverse("group-edit", args=["tech"]),
                      {"description": "Tech", "requires_decision": "on"})
    assert Group.objects.get(name="tech").requires_decision


def test_clearing_the_mark_needs_a_decision_and_the_error_links_to_it(admin_client):
    actions.do_create_group("passwords", acting_user=None, description="Before",
                            requires_decision=True)
    response = admin_client.post(reverse("group-edit", args=["passwords"]),
                                 {"description": "After"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "needs a decision of the members" in content
    assert ('<a href="/decisions/new/?operation=group.unprotect&amp;group=passwords">'
            in content)
    group = Group.objects.get(name="passwords")
    assert group.requires_decision and group.description == "Before"


def test_adding_or_removing_when_a_decision_is_required_links_to_a_proposal(admin_client,
                                                                           member):
    from chaton.governance.policy import current

    group = actions.do_create_group("passwords", acting_user=None, requires_decision=True)
    response = admin_client.post(reverse("group-member-add", args=["passwords"]),
                                 {"uid": "noa", "expires_on": "2040-05-01"})
    assert response.status_code == 200
    errors = response.context["member_form"].non_field_errors()
    assert "needs a decision of the members" in errors[0]
    assert ('<a href="/decisions/new/?operation=group.grant&amp;group=passwords&amp;'
            'account=noa&amp;expires_on=2040-04-30">') in response.content.decode()
    assert not GroupMembership.objects.exists()

    team = actions.do_create_group("team", acting_user=None)
    actions.do_add_to_group(team, member, acting_user=None)
    # Test setup: a policy that makes removals extraordinary, as a decision would set it.
    policy = current()
    policy.classes = {"group.revoke": "extraordinary"}
    policy.save()
    response = admin_client.post(reverse("group-member-remove", args=["team", "noa"]),
                                 follow=True)
    assert response.status_code == 200
    content = response.content.decode()
    assert ('<a href="/decisions/new/?operation=group.revoke&amp;group=team&amp;'
            'account=noa">') in content
    assert GroupMembership.objects.filter(group=team, account=member).exists()
    assert not GroupMembership.objects.filter(group=group).exists()
