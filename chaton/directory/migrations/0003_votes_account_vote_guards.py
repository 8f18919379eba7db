from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0002_group_requires_decision'),
    ]

    operations = [
        migrations.AddField(
            model_name='account',
            name='person_linked_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='account',
            name='password_set_by_other_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
