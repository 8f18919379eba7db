"""The recovery kit: its receipts, and the secrets key in Chaton's own backup plan.

Every plan that backs up Chaton's own database gets a ``secrets-key`` source,
so that the repository holds the key that opens the database's secrets.
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def add_secrets_key_sources(apps: Any, schema_editor: Any) -> None:
    from django.utils import timezone

    Source = apps.get_model("backups", "Source")
    Plan = apps.get_model("backups", "Plan")
    AuditLog = apps.get_model("core", "AuditLog")
    plan_ids = set(Source.objects.filter(kind="chaton").values_list("plan_id", flat=True))
    for plan_id in sorted(plan_ids):
        if Source.objects.filter(plan_id=plan_id, kind="secrets_key").exists():
            continue
        name = "secrets-key"
        if Source.objects.filter(plan_id=plan_id, name=name).exists():
            name = "chaton-secrets-key"
        now = timezone.now()
        source = Source.objects.create(plan_id=plan_id, kind="secrets_key", name=name,
                                       params={}, created_at=now)
        AuditLog.objects.create(created_at=now, actor=None, actor_label="system",
                                action="backups.source.add", target_type="backups.source",
                                target_id=str(source.pk),
                                target_label=f"{Plan.objects.get(pk=plan_id).name}/{name}",
                                after={"kind": "secrets_key", "name": name, "params": {}})


class Migration(migrations.Migration):

    dependencies = [
        ('backups', '0002_health_check_rotation_and_evidence'),
        ('core', '0002_throttle_event'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='drill',
            name='source_kind',
            field=models.CharField(choices=[('postgres', 'PostgreSQL database'), ('mariadb', 'MariaDB or MySQL database'), ('ldap', 'LDAP directory'), ('chaton', "Chaton's own database"), ('paths', 'directories'), ('docker_volume', 'Docker volume'), ('secrets_key', "Chaton's secrets key")], max_length=20),
        ),
        migrations.AlterField(
            model_name='source',
            name='kind',
            field=models.CharField(choices=[('postgres', 'PostgreSQL database'), ('mariadb', 'MariaDB or MySQL database'), ('ldap', 'LDAP directory'), ('chaton', "Chaton's own database"), ('paths', 'directories'), ('docker_volume', 'Docker volume'), ('secrets_key', "Chaton's secrets key")], max_length=20, verbose_name='kind'),
        ),
        migrations.AlterField(
            model_name='sourceresult',
            name='source_kind',
            field=models.CharField(choices=[('postgres', 'PostgreSQL database'), ('mariadb', 'MariaDB or MySQL database'), ('ldap', 'LDAP directory'), ('chaton', "Chaton's own database"), ('paths', 'directories'), ('docker_volume', 'Docker volume'), ('secrets_key', "Chaton's secrets key")], max_length=20),
        ),
        migrations.RunPython(add_secrets_key_sources, migrations.RunPython.noop),
            migrations.CreateModel(
            name='RecoveryKitEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('shown', 'shown'), ('stored', 'confirmed stored')], max_length=10, verbose_name='event')),
                ('at', models.DateTimeField(verbose_name='when')),
                ('actor_label', models.CharField(blank=True, default='', max_length=150)),
                ('via', models.CharField(blank=True, default='', max_length=10)),
                ('kit_digest', models.CharField(db_index=True, max_length=64)),
                ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'recovery kit event',
                'ordering': ['-at', '-id'],
            },
        ),
    
    ]
