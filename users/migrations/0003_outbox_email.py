"""The welcome email's outbox becomes the outbox of every email; users gain email_verified."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_recipients(apps, schema_editor):
    OutboxEmail = apps.get_model("users", "OutboxEmail")
    for email in OutboxEmail.objects.select_related("user").filter(to=""):
        email.to = email.user.email
        email.save(update_fields=["to"])


class Migration(migrations.Migration):

    dependencies = [
        ("users", "0002_welcome_email"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="email_verified",
            field=models.BooleanField(default=False),
        ),
        migrations.RemoveIndex(model_name="welcomeemail", name="welcome_pending_idx"),
        migrations.RenameModel(old_name="WelcomeEmail", new_name="OutboxEmail"),
        migrations.AlterField(
            model_name="outboxemail",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="emails", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="outboxemail",
            name="kind",
            field=models.CharField(
                choices=[
                    ("welcome", "Welcome"), ("verify_email", "Verify Email"), ("password_reset", "Password Reset"),
                    ("password_changed", "Password Changed"), ("email_changed", "Email Changed"),
                ],
                default="welcome",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="outboxemail",
            name="to",
            field=models.EmailField(default="", max_length=254),
            preserve_default=False,
        ),
        migrations.RunPython(fill_recipients, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="outboxemail",
            name="status",
            field=models.CharField(
                choices=[("pending", "Pending"), ("sent", "Sent"), ("skipped", "Skipped"), ("failed", "Failed")],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="outboxemail",
            index=models.Index(condition=models.Q(("status", "pending")), fields=["created_at"], name="outbox_pending_idx"),
        ),
    ]
