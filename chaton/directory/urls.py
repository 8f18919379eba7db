"""Pages of the directory app: self-service under /me/, a forgotten password under
/password-reset/, then /accounts/, /groups/, /directory/."""

from django.urls import path

from chaton.directory import recovery, views

urlpatterns = [
    path("me/", views.profile, name="profile"),
    path("me/password/", views.password_change, name="password-change"),
    path("me/keys/", views.ssh_keys, name="ssh-keys"),
    path("me/keys/<int:key_id>/remove/", views.ssh_key_remove, name="ssh-key-remove"),
    path("me/password/own-link/", recovery.password_own_link, name="password-own-link"),
    path("password-reset/", recovery.password_reset_request, name="password-reset"),
    path("password-reset/sent/", recovery.password_reset_sent, name="password-reset-sent"),
    path("password-reset/<str:uidb64>/<str:token>/", recovery.password_reset_confirm,
         name="password-reset-confirm"),
    path("accounts/", views.account_list, name="account-list"),
    path("accounts/new/", views.account_create, name="account-create"),
    path("accounts/<str:uid>/", views.account_detail, name="account-detail"),
    path("accounts/<str:uid>/edit/", views.account_edit, name="account-edit"),
    path("accounts/<str:uid>/state/", views.account_state, name="account-state"),
    path("accounts/<str:uid>/password/", views.account_password, name="account-password"),
    path("groups/", views.group_list, name="group-list"),
    path("groups/new/", views.group_create, name="group-create"),
    path("groups/<str:name>/", views.group_detail, name="group-detail"),
    path("groups/<str:name>/edit/", views.group_edit, name="group-edit"),
    path("groups/<str:name>/delete/", views.group_delete, name="group-delete"),
    path("groups/<str:name>/members/", views.group_member_add, name="group-member-add"),
    path("groups/<str:name>/members/<str:uid>/remove/", views.group_member_remove,
         name="group-member-remove"),
    path("directory/", views.directory_plan, name="directory-plan"),
]
