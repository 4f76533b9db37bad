"""Usernames and emails compare in one folded form computed in Python (users.models.fold), stored
beside them, instead of PostgreSQL's lower(), which folds some letters ("İ") differently: lookups,
uniqueness and rate-limit keys now agree. Two existing accounts whose names fold alike stop the
migration at the unique constraint; rename one first."""
from django.db import migrations, models


def fill_folded(apps, schema_editor):
    from users.models import fold

    User = apps.get_model("users", "User")
    for user in User.objects.only("pk", "username", "email").iterator():
        User.objects.filter(pk=user.pk).update(username_folded=fold(user.username), email_folded=fold(user.email))


class Migration(migrations.Migration):

    dependencies = [
        ("users", "0003_outbox_email"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="user", name="user_username_ci_unique"),
        migrations.RemoveConstraint(model_name="user", name="user_email_ci_unique"),
        migrations.AddField(
            model_name="user", name="username_folded", field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="user", name="email_folded", field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_folded, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                fields=["username_folded"], name="user_username_folded_unique",
                violation_error_message="A user with that username already exists.",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                condition=~models.Q(email_folded=""), fields=["email_folded"], name="user_email_folded_unique",
                violation_error_message="A user with that email already exists.",
            ),
        ),
    ]
