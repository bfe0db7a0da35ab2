"""Portfolios and grants; every existing property moves into the default portfolio (reversible)."""

import django.core.validators
import django.db.models.deletion
import documents.models
from django.conf import settings
from django.db import migrations, models


DEFAULT_CODE = "default"


def place_properties_in_default_portfolio(apps, schema_editor):
    portfolio_model = apps.get_model("documents", "Portfolio")
    property_model = apps.get_model("documents", "Property")
    default, _ = portfolio_model.objects.get_or_create(code=DEFAULT_CODE, defaults={"name": "Default portfolio"})
    property_model.objects.filter(portfolio__isnull=True).update(portfolio=default)


def clear_portfolios(apps, schema_editor):
    apps.get_model("documents", "Property").objects.update(portfolio=None)
    apps.get_model("documents", "Portfolio").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0002_latest_type_period_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Portfolio",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "code",
                    models.CharField(
                        max_length=30,
                        unique=True,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Za-z0-9_-]{1,30}$", "1-30 letters, digits, '_' or '-'"
                            )
                        ],
                    ),
                ),
                ("name", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "db_table": "portfolios",
                "ordering": ["code"],
            },
        ),
        migrations.AddField(
            model_name="property",
            name="portfolio",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="properties", to="documents.portfolio"
            ),
        ),
        migrations.RunPython(place_properties_in_default_portfolio, clear_portfolios),
        migrations.AlterField(
            model_name="property",
            name="portfolio",
            field=models.ForeignKey(
                default=documents.models.default_portfolio_id,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="properties",
                to="documents.portfolio",
            ),
        ),
        migrations.CreateModel(
            name="PortfolioGrant",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("granted_at", models.DateTimeField(auto_now_add=True)),
                (
                    "portfolio",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="grants", to="documents.portfolio"
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="portfolio_grants",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "portfolio_grants",
                "ordering": ["portfolio__code", "user__username"],
                "constraints": [models.UniqueConstraint(fields=("user", "portfolio"), name="portfolio_grant_unique")],
            },
        ),
    ]
