"""The backups pages, under /backups/ (administrators only)."""

from django.urls import path

from chaton.backups import views, views_recovery

urlpatterns = [
    path("backups/", views.overview, name="backup-overview"),
    path("backups/recovery-kit/", views_recovery.recovery_kit, name="backup-recovery-kit"),
    path("backups/recovery-kit/stored/", views_recovery.recovery_kit_stored,
         name="backup-recovery-kit-stored"),
    path("backups/new-repository/", views.repository_create, name="backup-repository-create"),
    path("backups/new-plan/", views.plan_create, name="backup-plan-create"),
    path("backups/repositories/<str:name>/", views.repository_detail, name="backup-repository"),
    path("backups/repositories/<str:name>/edit/", views.repository_edit,
         name="backup-repository-edit"),
    path("backups/repositories/<str:name>/init/", views.repository_init,
         name="backup-repository-init"),
    path("backups/repositories/<str:name>/check/", views.repository_check,
         name="backup-repository-check"),
    path("backups/repositories/<str:name>/delete/", views.repository_delete,
         name="backup-repository-delete"),
    path("backups/plans/<str:name>/", views.plan_detail, name="backup-plan"),
    path("backups/plans/<str:name>/edit/", views.plan_edit, name="backup-plan-edit"),
    path("backups/plans/<str:name>/delete/", views.plan_delete, name="backup-plan-delete"),
    path("backups/plans/<str:name>/run/", views.plan_run, name="backup-plan-run"),
    path("backups/plans/<str:name>/drill/", views.plan_drill, name="backup-plan-drill"),
    path("backups/plans/<str:name>/retention/", views.plan_retention,
         name="backup-plan-retention"),
    path("backups/plans/<str:name>/sources/new/", views.source_add, name="backup-source-add"),
    path("backups/plans/<str:name>/sources/<str:source>/remove/", views.source_remove,
         name="backup-source-remove"),
]
