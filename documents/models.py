"""The documents substrate: properties, periods, chart of accounts, uploads and line items."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from documents.scoping import PropertyScopedQuerySet
from kernel import vocabulary

PROPERTY_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,20}$"


# Built from kernel.vocabulary, where the parsers and the numeric core read the same values.
PropertyType = models.TextChoices("PropertyType", vocabulary.choices(vocabulary.PROPERTY_TYPE_LABELS))
DocumentType = models.TextChoices("DocumentType", vocabulary.choices(vocabulary.DOCUMENT_TYPE_LABELS))


class ExtractionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class SourceFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"
    PDF = "pdf", "PDF"


class AccountType(models.TextChoices):
    ASSET = "asset", "Asset"
    LIABILITY = "liability", "Liability"
    EQUITY = "equity", "Equity"
    REVENUE = "revenue", "Revenue"
    EXPENSE = "expense", "Expense"
    CASH_FLOW = "cash_flow", "Cash flow"
    METRIC = "metric", "Metric"
    OTHER = "other", "Other"


DEFAULT_PORTFOLIO_CODE = "default"
PORTFOLIO_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,30}$"


class Portfolio(models.Model):
    """An owner's properties: the unit of access for every user who is not a superuser (DESIGN §11)."""

    code = models.CharField(
        max_length=30,
        unique=True,
        validators=[RegexValidator(PORTFOLIO_CODE_PATTERN, "1-30 letters, digits, '_' or '-'")],
    )
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portfolios"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


def default_portfolio_id() -> int:
    """The portfolio of properties never assigned (created on first use)."""
    portfolio, _ = Portfolio.objects.get_or_create(code=DEFAULT_PORTFOLIO_CODE, defaults={"name": "Default portfolio"})
    return portfolio.pk


class PortfolioGrant(models.Model):
    """A user may read (and, as their groups allow, act on) the properties of this portfolio."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolio_grants")
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="grants")
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "portfolio_grants"
        ordering = ["portfolio__code", "user__username"]
        constraints = [models.UniqueConstraint(fields=["user", "portfolio"], name="portfolio_grant_unique")]

    def __str__(self) -> str:
        return f"{self.user} → {self.portfolio.code}"


class Property(models.Model):
    code = models.CharField(
        max_length=20,
        unique=True,
        validators=[RegexValidator(PROPERTY_CODE_PATTERN, "1-20 letters, digits, '_' or '-'")],
    )
    name = models.CharField(max_length=200, blank=True)
    portfolio = models.ForeignKey(
        Portfolio, on_delete=models.PROTECT, related_name="properties", default=default_portfolio_id
    )
    property_type = models.CharField(max_length=20, choices=PropertyType.choices, blank=True, db_index=True)
    address = models.CharField(max_length=300, blank=True)
    area_sqft = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "properties"
        ordering = ["code"]
        verbose_name_plural = "properties"

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class FinancialPeriod(models.Model):
    """A calendar month. ``ordinal`` (year * 12 + month - 1) makes ranges and gaps cheap."""

    year = models.PositiveSmallIntegerField(validators=[MinValueValidator(1900)])
    month = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    ordinal = models.PositiveIntegerField(unique=True)
    start_date = models.DateField()
    end_date = models.DateField()

    class Meta:
        db_table = "financial_periods"
        ordering = ["ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["year", "month"], name="financial_period_year_month_unique"),
            models.CheckConstraint(condition=Q(month__gte=1, month__lte=12), name="financial_period_month_range"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


class ChartOfAccount(models.Model):
    account_code = models.CharField(max_length=40, unique=True)
    account_name = models.CharField(max_length=200)
    account_type = models.CharField(max_length=20, choices=AccountType.choices, default=AccountType.OTHER, db_index=True)
    is_total = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "chart_of_accounts"
        ordering = ["account_code"]
        verbose_name = "account"

    def __str__(self) -> str:
        return f"{self.account_code} {self.account_name}"


class DocumentUpload(models.Model):
    """One version of one document: (property, document_type, period, version)."""

    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="documents")
    document_type = models.CharField(max_length=30, choices=DocumentType.choices)
    period = models.ForeignKey(FinancialPeriod, on_delete=models.PROTECT, related_name="documents")
    version = models.PositiveIntegerField(default=1)
    is_latest = models.BooleanField(default=True)
    file_name = models.CharField(max_length=255, blank=True)
    file_hash = models.CharField(max_length=64, blank=True, db_index=True, help_text="sha256 of the source file")
    content_hash = models.CharField(max_length=64, help_text="sha256 of the normalised line items")
    source_format = models.CharField(max_length=10, choices=SourceFormat.choices, default=SourceFormat.CSV)
    extraction_status = models.CharField(max_length=20, choices=ExtractionStatus.choices, default=ExtractionStatus.PENDING)
    extraction_error = models.TextField(blank=True)
    line_count = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    last_detected_at = models.DateTimeField(null=True, blank=True)

    objects = PropertyScopedQuerySet.for_path("property").as_manager()

    class Meta:
        db_table = "document_uploads"
        ordering = ["property__code", "document_type", "period__ordinal", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["property", "document_type", "period", "version"], name="document_version_unique"
            ),
            models.UniqueConstraint(
                fields=["property", "document_type", "period"],
                condition=Q(is_latest=True),
                name="document_one_latest_version",
            ),
        ]
        indexes = [
            models.Index(fields=["property", "document_type", "period"], name="document_natural_key_idx"),
            models.Index(fields=["extraction_status"], name="document_status_idx"),
            models.Index(fields=["document_type", "period"], name="document_type_period_idx"),
            # Counting a job's documents (latest versions by type and month) reads only this.
            models.Index(
                fields=["document_type", "period"], condition=Q(is_latest=True), name="document_latest_type_per_idx"
            ),
            models.Index(fields=["uploaded_at"], name="document_uploaded_at_idx"),
            # A job over a user's properties (portfolio scoping names them) counts from this alone.
            models.Index(
                fields=["property", "document_type", "period"],
                condition=Q(is_latest=True),
                name="document_latest_property_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.property.code} {self.document_type} {self.period.label} v{self.version}"


class LineItem(models.Model):
    document = models.ForeignKey(DocumentUpload, on_delete=models.CASCADE, related_name="line_items")
    account_code = models.CharField(max_length=40)
    account_name = models.CharField(max_length=200)
    amount = models.DecimalField(max_digits=18, decimal_places=2)
    is_total = models.BooleanField(default=False)
    row_order = models.PositiveIntegerField(default=0, help_text="position of the line in its document")
    page_number = models.PositiveIntegerField(null=True, blank=True)
    x0 = models.FloatField(null=True, blank=True)
    y0 = models.FloatField(null=True, blank=True)
    x1 = models.FloatField(null=True, blank=True)
    y1 = models.FloatField(null=True, blank=True)
    extraction_confidence = models.FloatField(null=True, blank=True)

    objects = PropertyScopedQuerySet.for_path("document__property").as_manager()

    class Meta:
        db_table = "line_items"
        ordering = ["document_id", "row_order"]
        constraints = [
            models.UniqueConstraint(fields=["document", "account_code"], name="line_item_account_unique"),
        ]
        indexes = [
            models.Index(fields=["account_code"], name="line_item_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_code} {self.account_name}: {self.amount}"


class PDFFieldCoordinate(models.Model):
    """Where in a PDF a stored value was read from (one row per extracted field)."""

    document = models.ForeignKey(DocumentUpload, on_delete=models.CASCADE, related_name="pdf_coordinates")
    table_name = models.CharField(max_length=64, default="line_items")
    record_id = models.BigIntegerField()
    field_name = models.CharField(max_length=64)
    page_number = models.PositiveIntegerField()
    x0 = models.FloatField()
    y0 = models.FloatField()
    x1 = models.FloatField()
    y1 = models.FloatField()
    extraction_method = models.CharField(max_length=40, default="pdfplumber")
    confidence = models.FloatField(null=True, blank=True)
    matched_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PropertyScopedQuerySet.for_path("document__property").as_manager()

    class Meta:
        db_table = "pdf_field_coordinates"
        ordering = ["document_id", "page_number", "y0"]
        verbose_name = "PDF field coordinate"
        indexes = [
            models.Index(fields=["table_name", "record_id"], name="pdf_coord_record_idx"),
            models.Index(fields=["extraction_method"], name="pdf_coord_method_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.table_name}#{self.record_id}.{self.field_name} p{self.page_number}"
