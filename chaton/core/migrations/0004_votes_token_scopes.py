from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


def existing_tokens_keep_their_rights(apps, schema_editor):
    """Tokens made before scopes were minted by an administrator: everything but the vote."""
    ApiToken = apps.get_model("core", "ApiToken")
    ApiToken.objects.update(scopes=["read", "write", "admin"])


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0003_lanes_jobs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='scopes',
            field=models.JSONField(default=list),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='minted_by_owner',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(existing_tokens_keep_their_rights, migrations.RunPython.noop),
    ]
