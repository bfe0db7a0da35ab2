"""HTTP API of the documents app (mounted under /api/v1/): list, detail and upload."""

from __future__ import annotations

import logging

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from documents.filters import PERIOD_VALIDATOR
from documents.models import DocumentType, ExtractionStatus, SourceFormat
from documents.selectors import document_get, document_list, line_item_list
from documents.services import UploadedSource, documents_import
from documents.uploads import UploadTooLarge, check_declared_size, check_files_size, upload_error_from
from kernel.exceptions import ApplicationError
from kernel.logging import log_event
from kernel.pagination import StrictPageNumberPagination
from kernel.permissions import ReadOrRequiredPermission
from kernel.throttles import DocumentImportThrottle

IMPORT_PERMISSION = "documents.add_documentupload"


class ErrorSerializer(serializers.Serializer):
    """4xx answers: ``detail`` is the one-line reason; field names map to their messages."""

    detail = serializers.CharField(required=False)
    file = serializers.ListField(child=serializers.CharField(), required=False)


class DocumentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    property_code = serializers.CharField(source="property.code")
    property_name = serializers.CharField(source="property.name")
    document_type = serializers.CharField()
    period = serializers.CharField(source="period.label")
    version = serializers.IntegerField()
    is_latest = serializers.BooleanField()
    extraction_status = serializers.CharField()
    source_format = serializers.CharField()
    file_name = serializers.CharField()
    line_count = serializers.IntegerField()
    uploaded_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)


class ImportSummarySerializer(serializers.Serializer):
    files = serializers.IntegerField()
    file_names = serializers.ListField(child=serializers.CharField())
    documents_new = serializers.IntegerField()
    documents_changed = serializers.IntegerField()
    documents_unchanged = serializers.IntegerField()
    line_items_written = serializers.IntegerField()
    document_ids = serializers.ListField(child=serializers.IntegerField())
    new_document_ids = serializers.ListField(child=serializers.IntegerField())
    changed_document_ids = serializers.ListField(child=serializers.IntegerField())
    detection_requested = serializers.BooleanField()
    detection_tasks = serializers.IntegerField(help_text="detect_documents tasks queued on the anomaly queue")
    detection_documents = serializers.IntegerField()
    detection_error = serializers.CharField(allow_blank=True)
    detection = serializers.CharField(help_text="what happened to detection, in words")


class DocumentListApi(APIView):
    permission_classes = [ReadOrRequiredPermission]
    required_permission = IMPORT_PERMISSION
    throttle_classes = [DocumentImportThrottle]  # counts uploads (POST) only

    class InputSerializer(serializers.Serializer):
        file = serializers.ListField(child=serializers.FileField(), help_text="one or several CSV, XLSX or PDF files")
        property = serializers.RegexField(r"^[A-Za-z0-9_-]{1,20}$", required=False, allow_blank=True)
        document_type = serializers.ChoiceField(choices=DocumentType.choices, required=False, allow_blank=True)
        period = serializers.CharField(required=False, allow_blank=True, validators=[PERIOD_VALIDATOR])
        detect = serializers.BooleanField(
            required=False, default=True, help_text="false: do not queue detection of the imported documents"
        )

    pagination_class = StrictPageNumberPagination  # also tells the schema that the list is paginated

    def initial(self, request: Request, *args, **kwargs) -> None:
        # Before authentication: a session login's CSRF check would read (and spool) the body.
        if request.method == "POST":
            check_declared_size(request.META)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        # Django's refusals of a body (RequestDataTooBig...) are not DRF exceptions: without this
        # they would escape as an HTML 400 page instead of the API's JSON.
        exc = upload_error_from(exc, self.request.META) or exc
        if self.request.method == "POST" and isinstance(exc, UploadTooLarge | Throttled):
            # Refused before the import service ran: its log line would be missing otherwise.
            user = getattr(self.request, "_user", None)  # unset when refused before authentication
            log_event(
                "documents_import",
                level=logging.WARNING,
                outcome="throttled" if isinstance(exc, Throttled) else "rejected",
                channel="api",
                reason=" ".join(str(exc.detail if isinstance(exc, Throttled) else exc.message).split()),
                user_id=getattr(user, "pk", None),
                content_length=self.request.META.get("CONTENT_LENGTH"),
            )
        return super().handle_exception(exc)

    @extend_schema(
        parameters=[
            OpenApiParameter("property", str, description="property code(s), comma-separated"),
            OpenApiParameter("document_type", str, enum=DocumentType.values, many=True),
            OpenApiParameter("period_from", str, description="YYYY-MM"),
            OpenApiParameter("period_to", str, description="YYYY-MM"),
            OpenApiParameter("extraction_status", str, enum=ExtractionStatus.values),
            OpenApiParameter("source_format", str, enum=SourceFormat.values),
            OpenApiParameter("latest", bool, description="latest versions only (default true)"),
        ],
        responses={200: DocumentOutputSerializer(many=True), 400: ErrorSerializer, 404: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        documents = document_list(user=request.user, filters=request.query_params)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(documents, request, view=self)
        return paginator.get_paginated_response(DocumentOutputSerializer(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={
            201: ImportSummarySerializer,
            400: ErrorSerializer,
            403: ErrorSerializer,
            413: ErrorSerializer,
            429: ErrorSerializer,
        },
        description="Import statement files through the same service as `import_documents`. Every file is "
        "validated first: any error answers 400 with every error of the call in `file` (up to 100, then "
        "'and N more'), each `file: row R, column C: reason`, and `detail` the count (or the error when there "
        "is one); nothing is written. A successful import queues detection of the documents it created or "
        "changed on the anomaly queue (`detection` says so); `detect=false` skips it. "
        "Uploads larger than MAX_UPLOAD_SIZE_MB together answer 413, and more than THROTTLE_DOCUMENT_IMPORT "
        "uploads per user answer 429 (Retry-After says when to try again); neither writes anything.",
    )
    def post(self, request: Request) -> Response:
        files = request.FILES.getlist("file")
        check_files_size(files)
        if not files:
            raise ApplicationError("No file was submitted.", field_errors={"file": ["No file was submitted."]})
        data = {
            key: request.data.get(key) for key in ("property", "document_type", "period", "detect") if key in request.data
        }
        serializer = self.InputSerializer(data={**data, "file": files})
        serializer.is_valid(raise_exception=True)
        options = serializer.validated_data
        summary = documents_import(
            files=[UploadedSource.from_file(uploaded) for uploaded in files],
            uploaded_by=request.user,
            channel="api",
            detect=options["detect"],
            overrides={
                "property_code": options.get("property") or None,
                "document_type": options.get("document_type") or None,
                "period": options.get("period") or None,
            },
        )
        return Response(ImportSummarySerializer(summary.as_dict()).data, status=status.HTTP_201_CREATED)


class LineItemOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account_code = serializers.CharField()
    account_name = serializers.CharField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    is_total = serializers.BooleanField()
    row_order = serializers.IntegerField()
    page_number = serializers.IntegerField(allow_null=True)
    x0 = serializers.FloatField(allow_null=True)
    y0 = serializers.FloatField(allow_null=True)
    x1 = serializers.FloatField(allow_null=True)
    y1 = serializers.FloatField(allow_null=True)
    extraction_confidence = serializers.FloatField(allow_null=True)


class DocumentDetailOutputSerializer(DocumentOutputSerializer):
    content_hash = serializers.CharField()
    file_hash = serializers.CharField()
    line_items = serializers.SerializerMethodField()

    @extend_schema_field(LineItemOutputSerializer(many=True))
    def get_line_items(self, document) -> list[dict]:
        return LineItemOutputSerializer(line_item_list(document_ids=[document.id]), many=True).data


class DocumentDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses=DocumentDetailOutputSerializer)
    def get(self, request: Request, document_id: int) -> Response:
        document = document_get(document_id=document_id, user=request.user)
        if document is None:
            raise Http404
        return Response(DocumentDetailOutputSerializer(document).data)
