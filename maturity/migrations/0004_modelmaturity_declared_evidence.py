from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("maturity", "0003_plural_labels"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelmaturity",
            name="declared_evidence",
            field=models.BooleanField(default=False),
        ),
    ]
