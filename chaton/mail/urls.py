"""The mail pages under /mail/, and the public /.well-known/ files of the mail identity."""

from django.urls import path, re_path

from chaton.mail import views

urlpatterns = [
    path("mail/", views.overview, name="mail-overview"),
    path("mail/new-zone/", views.zone_create, name="mail-zone-create"),
    path("mail/new-domain/", views.domain_create, name="mail-domain-create"),
    path("mail/mta-sts/<str:name>.txt", views.mta_sts, name="mail-mta-sts"),
    path("mail/domains/<str:name>/", views.domain_detail, name="mail-domain"),
    path("mail/domains/<str:name>/apply/", views.domain_apply, name="mail-domain-apply"),
    path("mail/domains/<str:name>/rotate/", views.domain_rotate, name="mail-domain-rotate"),
    path(".well-known/dkim/", views.dkim_readme, name="mail-dkim-readme"),
    re_path(r"^\.well-known/dkim/(?P<name>[^/]+)\.pem$", views.dkim_published,
            name="mail-dkim-published"),
]
