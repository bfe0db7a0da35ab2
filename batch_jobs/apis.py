"""HTTP API of batch reprocessing (DESIGN.md §6), mounted under /api/v1/batch-reprocessing/."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from batch_jobs import selectors, services
from batch_jobs.models import BatchReprocessingJob, ExtractionStatusFilter, JobStatus
from kernel.permissions import ReadOrRequiredPermission
from kernel.throttles import JobCreateThrottle


class BatchJobCreateSerializer(serializers.Serializer):
    """BatchJobCreate: the filters of a new job; empty lists and missing dates mean 'all'."""

    job_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    property_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)
    date_range_start = serializers.DateField(required=False, allow_null=True, default=None)
    date_range_end = serializers.DateField(required=False, allow_null=True, default=None)
    document_types = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    # A plain string: an unknown value is reported by the service with the accepted ones.
    extraction_status_filter = serializers.CharField(required=False, default=ExtractionStatusFilter.ALL)


class BatchJobSerializer(serializers.ModelSerializer):
    progress_pct = serializers.FloatField(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    initiated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = BatchReprocessingJob
        fields = [
            "id",
            "job_name",
            "status",
            "progress_pct",
            "estimated_completion_at",
            "total_documents",
            "processed_documents",
            "successful_documents",
            "failed_documents",
            "skipped_documents",
            "cancel_requested",
            "error_message",
            "property_ids",
            "date_range_start",
            "date_range_end",
            "document_types",
            "extraction_status_filter",
            "celery_task_id",
            "initiated_by",
            "created_at",
            "started_at",
            "completed_at",
            "duration_seconds",
            "results_summary",
        ]
        read_only_fields = fields


class BatchJobListSerializer(BatchJobSerializer):
    class Meta(BatchJobSerializer.Meta):
        fields = [f for f in BatchJobSerializer.Meta.fields if f != "results_summary"]
        read_only_fields = fields


class BatchJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)

    class Meta:
        model = BatchReprocessingJob
        fields = ["status"]


class BatchJobCreateApi(APIView):
    """Create a batch reprocessing job over the latest documents matching the filters and queue it."""

    permission_classes = [ReadOrRequiredPermission]
    required_permission = "batch_jobs.add_batchreprocessingjob"
    throttle_classes = [JobCreateThrottle]

    @extend_schema(
        request=BatchJobCreateSerializer,
        responses={
            201: BatchJobSerializer,
            400: OpenApiResponse(description="field errors: unknown property ids, end before start, ..."),
            403: OpenApiResponse(description="missing permission batch_jobs.add_batchreprocessingjob"),
            429: OpenApiResponse(description="too many jobs created (THROTTLE_JOB_CREATE)"),
            503: OpenApiResponse(description="BATCH_REPROCESSING_ENABLED is off"),
        },
    )
    def post(self, request: Request) -> Response:
        data = BatchJobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.job_submit(**data.validated_data, initiated_by=request.user)
        return Response(BatchJobSerializer(job).data, status=status.HTTP_201_CREATED)


class BatchJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batch reprocessing jobs: progress, counts and results; cancel a queued or running job."""

    serializer_class = BatchJobSerializer
    permission_classes = [ReadOrRequiredPermission]
    required_permission = "batch_jobs.change_batchreprocessingjob"
    filterset_class = BatchJobFilter
    ordering_fields = ["created_at", "status", "id"]

    def get_queryset(self):
        return selectors.job_list(user=self.request.user)

    def get_serializer_class(self):
        return BatchJobListSerializer if self.action == "list" else BatchJobSerializer

    @extend_schema(
        request=None,
        responses={
            200: BatchJobSerializer,
            409: OpenApiResponse(description="the job is already finished"),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        job = services.job_cancel(job=self.get_object())
        job.refresh_from_db()
        return Response(BatchJobSerializer(job).data)
