from django.db import migrations, models


def recorded_when_they_started(apps, schema_editor):
    """Memberships recorded before this field existed count from their start, as they did."""
    Membership = apps.get_model("members", "Membership")
    Membership.objects.update(recorded_on=models.F("starts_on"))


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='membership',
            name='recorded_on',
            field=models.DateField(editable=False, null=True, verbose_name='recorded on'),
        ),
        migrations.RunPython(recorded_when_they_started, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='membership',
            name='recorded_on',
            field=models.DateField(editable=False, verbose_name='recorded on'),
        ),
    ]
