"""The members pages through Django's test client, with the in-memory directory."""

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from chaton.core import clock
from chaton.core.models import AuditLog
from chaton.directory import actions as directory_actions
from chaton.members import actions
from chaton.members.models import DuesPayment, Membership, MembershipKind, Person
from chaton.members.views import counts_sentence
from chaton.testing.second_factor import login_with_second_factor

BASE = "dc=chaton,dc=test"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(client):
    """The test client, reading pages in English (the source language of the messages)."""
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture(autouse=True)
def _every_test_uses_the_fake_directory(directory):
    return directory


@pytest.fixture
def admin_client(client):
    account = directory_actions.do_create_account(
        "camille", acting_user=None, display_name="Camille Admin",
        email="camille@example.org", is_admin=True)
    login_with_second_factor(client, account)
    client.account = account
    return client


@pytest.fixture
def member_client(client):
    account = directory_actions.do_create_account(
        "noa", acting_user=None, display_name="Noa Member", email="noa@example.org")
    client.force_login(account)
    return client


def make_people(count, start=0):
    """Create ``count`` persons, each with a current membership and an account."""
    today = clock.today()
    for number in range(start, start + count):
        person = actions.do_create_person(f"Person {number:03}", f"p{number}@example.org",
                                          acting_user=None)
        actions.do_start_membership(person, acting_user=None,
                                    starts_on=today - dt.timedelta(days=30))
        directory_actions.do_create_account(f"person{number}", acting_user=None,
                                            display_name=person.full_name,
                                            email=person.email, person=person)


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get(reverse("person-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["person-list", "person-create", "organization-list",
                                  "organization-create", "member-counts"])
def test_members_pages_are_for_administrators(member_client, name):
    assert member_client.get(reverse(name)).status_code == 403


def test_create_person_through_the_form(admin_client):
    response = admin_client.post(reverse("person-create"), {
        "full_name": "Maëlle Exemple", "email": "Maelle@Example.org", "phone": ""})
    person = Person.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("person-detail", args=[person.pk])
    assert person.email == "maelle@example.org"
    assert AuditLog.objects.filter(action="person.create", actor=admin_client.account).exists()


def test_duplicate_email_is_shown_next_to_the_field_and_input_kept(admin_client):
    actions.do_create_person("Jo First", "jo@example.org", acting_user=None)
    response = admin_client.post(reverse("person-create"), {
        "full_name": "Jo Second", "email": "jo@example.org", "phone": "01 02"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "already exists" in form.errors["email"][0]
    content = response.content.decode()
    assert 'value="Jo Second"' in content and 'value="01 02"' in content
    assert Person.objects.count() == 1


def test_invalid_email_from_the_action_lands_on_the_email_field(admin_client):
    response = admin_client.post(reverse("person-create"),
                                 {"full_name": "Lou", "email": "not-an-email"})
    assert "not a valid email" in response.context["form"].errors["email"][0]


def test_display_name_is_escaped(admin_client):
    actions.do_create_person("<script>alert(1)</script>", "x@example.org", acting_user=None)
    content = admin_client.get(reverse("person-list")).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_search_and_pagination(admin_client):
    make_people(3)
    actions.do_create_person("Zélie Unique", "zelie@example.org", acting_user=None)
    response = admin_client.get(reverse("person-list"), {"q": "zélie"})
    assert [person.full_name for person in response.context["page"]] == ["Zélie Unique"]
    response = admin_client.get(reverse("person-list"), {"q": "nobody-matches"})
    assert "No person matches this search." in response.content.decode()


def test_person_list_uses_a_constant_number_of_queries(admin_client,
                                                       django_assert_max_num_queries):
    make_people(2)
    with django_assert_max_num_queries(8) as few:
        assert admin_client.get(reverse("person-list")).status_code == 200
    make_people(25, start=2)
    with django_assert_max_num_queries(8) as many:
        response = admin_client.get(reverse("person-list"))
    assert len(response.context["page"]) == 27
    assert "person26" in response.content.decode()
    assert len(few.captured_queries) == len(many.captured_queries)


def test_organization_list_uses_a_constant_number_of_queries(admin_client,
                                                             django_assert_max_num_queries):
    def add(count, start=0):
        for number in range(start, start + count):
            organization = actions.do_create_organization(
                f"Association {number}", f"asso{number}@example.org", acting_user=None)
            actions.do_start_membership(organization, acting_user=None,
                                        starts_on=clock.today())

    add(2)
    with django_assert_max_num_queries(8) as few:
        admin_client.get(reverse("organization-list"))
    add(10, start=2)
    with django_assert_max_num_queries(8) as many:
        admin_client.get(reverse("organization-list"))
    assert len(few.captured_queries) == len(many.captured_queries)


def test_person_edit_keeps_input_on_conflict(admin_client):
    actions.do_create_person("Ana", "ana@example.org", acting_user=None)
    bea = actions.do_create_person("Bea", "bea@example.org", acting_user=None)
    response = admin_client.post(reverse("person-edit", args=[bea.pk]), {
        "full_name": "Béa Renamed", "email": "ana@example.org", "phone": ""})
    assert "already exists" in response.context["form"].errors["email"][0]
    assert 'value="Béa Renamed"' in response.content.decode()
    bea.refresh_from_db()
    assert bea.full_name == "Bea"


def test_membership_dues_and_end_from_the_person_page(admin_client):
    person = actions.do_create_person("Eli", "eli@example.org", acting_user=None)
    response = admin_client.post(reverse("person-start-membership", args=[person.pk]), {
        "kind": MembershipKind.REGULAR, "starts_on": "2025-01-10", "ends_on": ""})
    assert response.status_code == 302
    membership = Membership.objects.get(person=person)
    response = admin_client.post(reverse("membership-dues", args=[membership.pk]), {
        f"dues-{membership.pk}-amount": "12.50", f"dues-{membership.pk}-paid_on": "2025-01-11"})
    assert response.status_code == 302
    assert DuesPayment.objects.get().amount == Decimal("12.50")
    response = admin_client.post(reverse("membership-end", args=[membership.pk]), {
        f"end-{membership.pk}-ends_on": "2025-12-31"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.ends_on == dt.date(2025, 12, 31)
    page = admin_client.get(reverse("person-detail", args=[person.pk])).content.decode()
    assert "12.50" in page and "2025-12-31" in page


def test_end_before_start_shows_the_action_error_on_that_membership(admin_client):
    person = actions.do_create_person("Fen", "fen@example.org", acting_user=None)
    membership = actions.do_start_membership(person, acting_user=None,
                                             starts_on=dt.date(2025, 3, 1))
    response = admin_client.post(reverse("membership-end", args=[membership.pk]), {
        f"end-{membership.pk}-ends_on": "2025-02-01"})
    assert response.status_code == 200
    content = response.content.decode()
    assert "A membership cannot end before it starts." in content
    assert 'value="2025-02-01"' in content
    membership.refresh_from_db()
    assert membership.ends_on is None


def test_overlapping_membership_is_refused_with_a_clear_error(admin_client):
    person = actions.do_create_person("Gus", "gus@example.org", acting_user=None)
    actions.do_start_membership(person, acting_user=None, starts_on=dt.date(2025, 1, 1))
    response = admin_client.post(reverse("person-start-membership", args=[person.pk]), {
        "kind": MembershipKind.SUPPORT, "starts_on": "2025-06-01", "ends_on": ""})
    assert response.status_code == 200
    assert "already has a membership" in response.context["start_form"].errors["starts_on"][0]
    assert Membership.objects.count() == 1


def test_member_counts_on_a_day_and_over_a_period(admin_client):
    for number in range(2):
        person = actions.do_create_person(f"Counted {number}", f"c{number}@example.org",
                                          acting_user=None)
        actions.do_start_membership(person, acting_user=None, starts_on=dt.date(2025, 1, 1))
    late = actions.do_create_person("Late", "late@example.org", acting_user=None)
    actions.do_start_membership(late, acting_user=None, starts_on=dt.date(2025, 6, 1))
    organization = actions.do_create_organization("Partner", "partner@example.org",
                                                  acting_user=None)
    actions.do_start_membership(organization, acting_user=None, starts_on=dt.date(2025, 1, 1),
                                kind=MembershipKind.SUPPORT)
    day = admin_client.get(reverse("member-counts"), {"start": "2025-03-01"})
    assert "2 natural persons and 1 legal person" in day.content.decode()
    period = admin_client.get(reverse("member-counts"),
                              {"start": "2025-01-01", "end": "2025-12-31"})
    assert "3 natural persons and 1 legal person" in period.content.decode()
    backwards = admin_client.get(reverse("member-counts"),
                                 {"start": "2025-12-31", "end": "2025-01-01"})
    assert "before its start" in backwards.content.decode()


def test_counts_sentence_uses_plurals():
    with translation.override("en"):
        assert counts_sentence(28, 2) == "28 natural persons and 2 legal persons"
        assert counts_sentence(1, 0) == "1 natural person and 0 legal persons"


def test_organization_create_and_duplicate(admin_client):
    response = admin_client.post(reverse("organization-create"), {
        "name": "Les Amis du Libre", "slug": "", "email": "amis@example.org"})
    assert response.status_code == 302
    response = admin_client.post(reverse("organization-create"), {
        "name": "Les Amis du Libre", "slug": "", "email": "autre@example.org"})
    assert "already exists" in response.context["form"].errors["name"][0]
    assert 'value="autre@example.org"' in response.content.decode()
