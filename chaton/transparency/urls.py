"""The transparency pages: public ones (no login) and the administrators' settings and register."""

from django.urls import path

from chaton.transparency import views

urlpatterns = [
    path(".well-known/chatonsinfos/", views.chatonsinfos_index, name="chatonsinfos-index"),
    path(".well-known/chatonsinfos/<str:name>.properties", views.chatonsinfos_file,
         name="chatonsinfos-file"),
    path("transparency/", views.public_page, name="transparency-public"),
    path("transparency/software/", views.software_page, name="transparency-software"),
    path("transparency/software.txt", views.software_text, name="transparency-software-text"),
    path("transparency/settings/", views.settings_page, name="transparency-settings"),
    path("transparency/requests/", views.request_list, name="transparency-requests"),
    path("transparency/requests/<int:request_id>/", views.request_detail,
         name="transparency-request"),
]
