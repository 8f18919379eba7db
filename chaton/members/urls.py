"""Pages of the members app: /members/… and /organizations/…"""

from django.urls import path

from chaton.members import views

urlpatterns = [
    path("members/", views.person_list, name="person-list"),
    path("members/new/", views.person_create, name="person-create"),
    path("members/counts/", views.member_counts, name="member-counts"),
    path("members/<int:person_id>/", views.person_detail, name="person-detail"),
    path("members/<int:person_id>/edit/", views.person_edit, name="person-edit"),
    path("members/<int:person_id>/memberships/", views.person_start_membership,
         name="person-start-membership"),
    path("members/memberships/<int:membership_id>/end/", views.membership_end,
         name="membership-end"),
    path("members/memberships/<int:membership_id>/dues/", views.membership_dues,
         name="membership-dues"),
    path("organizations/", views.organization_list, name="organization-list"),
    path("organizations/new/", views.organization_create, name="organization-create"),
    path("organizations/<int:organization_id>/", views.organization_detail,
         name="organization-detail"),
    path("organizations/<int:organization_id>/edit/", views.organization_edit,
         name="organization-edit"),
    path("organizations/<int:organization_id>/memberships/",
         views.organization_start_membership, name="organization-start-membership"),
]
