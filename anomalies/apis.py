"""The anomalies API (DESIGN §6): thin views over selectors and services."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anomalies import selectors, services
from anomalies.detection.catalogue import get_available_algorithms
from anomalies.filters import AnomalyFilter, SelectionLogFilter
from anomalies.models import AnomalyDetection, AnomalyExplanation, FeedbackType, ModelSelectionLog
from kernel.permissions import ReadOrRequiredPermission


class AnomalyOutputSerializer(serializers.ModelSerializer):
    property_code = serializers.CharField(source="property.code")
    period = serializers.CharField(source="period.label")
    account_name = serializers.CharField(read_only=True, help_text="the line's name on its statement")
    document_type_label = serializers.CharField(source="get_document_type_display", read_only=True)

    class Meta:
        model = AnomalyDetection
        fields = [
            "id",
            "property_id",
            "property_code",
            "document_id",
            "document_type",
            "document_type_label",
            "period",
            "account_code",
            "account_name",
            "line_item_id",
            "field_value",
            "expected_value",
            "z_score",
            "percentage_change",
            "anomaly_type",
            "severity",
            "confidence",
            "anomaly_score",
            "threshold",
            "is_anomaly",
            "direction",
            "detector",
            "model_key",
            "model_version",
            "explanation_text",
            "status",
            "detected_at",
        ]


class ExplanationSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnomalyExplanation
        fields = [
            "summary",
            "root_cause_type",
            "contributing_factors",
            "suggested_actions",
            "shap_values",
            "lime_explanation",
            "explanation_method",
            "computation_time_ms",
            "created_at",
        ]


class CoordinatesSerializer(serializers.Serializer):
    page_number = serializers.IntegerField()
    x0 = serializers.FloatField()
    y0 = serializers.FloatField()
    x1 = serializers.FloatField()
    y1 = serializers.FloatField()
    extraction_confidence = serializers.FloatField(allow_null=True)


class AnomalyDetailSerializer(AnomalyOutputSerializer):
    explanation = serializers.SerializerMethodField()
    coordinates = serializers.SerializerMethodField()

    class Meta(AnomalyOutputSerializer.Meta):
        fields = [*AnomalyOutputSerializer.Meta.fields, "contributions", "explanation", "coordinates"]

    @extend_schema_field(ExplanationSerializer(allow_null=True))
    def get_explanation(self, obj: AnomalyDetection) -> dict | None:
        explanation = next(iter(obj.explanations.all()), None)
        return ExplanationSerializer(explanation).data if explanation else None

    @extend_schema_field(CoordinatesSerializer(allow_null=True))
    def get_coordinates(self, obj: AnomalyDetection) -> dict | None:
        return selectors.line_coordinates(detection=obj)


class AnomalyListApi(generics.ListAPIView):
    """Scored lines, flagged ones only unless ``is_anomaly`` says otherwise; highest score first."""

    serializer_class = AnomalyOutputSerializer
    filterset_class = AnomalyFilter
    ordering_fields = ["anomaly_score", "detected_at", "period__ordinal", "severity", "account_code"]
    ordering = ["-anomaly_score", "-detected_at", "id"]

    def get_queryset(self):
        return selectors.anomaly_list(user=self.request.user, flagged_only=False)


class AnomalyDetailApi(generics.RetrieveAPIView):
    serializer_class = AnomalyDetailSerializer

    def get_queryset(self):
        return (
            selectors.anomaly_list(user=self.request.user, flagged_only=False)
            .select_related("line_item", "document")
            .prefetch_related("explanations")
        )


class FeedbackInputSerializer(serializers.Serializer):
    feedback_type = serializers.ChoiceField(choices=FeedbackType.choices)
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=services.FEEDBACK_NOTES_MAX_LENGTH
    )
    feedback_confidence = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0)
    business_context = serializers.DictField(required=False, allow_null=True)


class FeedbackOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    anomaly_id = serializers.IntegerField(allow_null=True)
    feedback_type = serializers.CharField()
    is_anomaly = serializers.BooleanField()
    notes = serializers.CharField()
    feedback_confidence = serializers.FloatField(allow_null=True)
    business_context = serializers.DictField()
    anomaly_status = serializers.CharField(source="anomaly.status", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AnomalyFeedbackApi(APIView):
    """Record the current user's verdict on an anomaly (again: updates it)."""

    permission_classes = [ReadOrRequiredPermission]
    required_permission = "anomalies.add_anomalyfeedback"

    @extend_schema(request=FeedbackInputSerializer, responses={201: FeedbackOutputSerializer})
    def post(self, request: Request, pk: int) -> Response:
        if selectors.anomaly_get(anomaly_id=pk, user=request.user) is None:
            raise Http404  # outside the user's portfolios reads exactly as missing
        data = FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        feedback = services.anomaly_feedback_submit(anomaly_id=pk, user=request.user, **data.validated_data)
        return Response(FeedbackOutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


class AlgorithmSerializer(serializers.Serializer):
    name = serializers.CharField()
    full_name = serializers.CharField()
    family = serializers.CharField()
    cost = serializers.CharField()
    class_path = serializers.CharField()
    data_types = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField()
    benchmark_rank = serializers.IntegerField(allow_null=True)
    requires = serializers.ListField(child=serializers.CharField())
    available = serializers.BooleanField()
    unavailable_reason = serializers.CharField(allow_null=True)
    best_for = serializers.CharField(allow_blank=True)
    avoid_when = serializers.CharField(allow_blank=True)


class AlgorithmListApi(APIView):
    """The detector catalogue, from PyOD's knowledge base, with what can run on this machine."""

    @extend_schema(
        responses=inline_serializer(
            "AlgorithmCatalogue",
            fields={
                "count": serializers.IntegerField(),
                "available": serializers.IntegerField(),
                "results": AlgorithmSerializer(many=True),
            },
        ),
        parameters=[OpenApiParameter("available", bool, description="only those that can (true) / cannot run")],
    )
    def get(self, request: Request) -> Response:
        algorithms = get_available_algorithms()
        wanted = request.query_params.get("available")
        if wanted in ("true", "false"):
            algorithms = [a for a in algorithms if a["available"] == (wanted == "true")]
        return Response(
            {
                "count": len(algorithms),
                "available": sum(1 for a in algorithms if a["available"]),
                "results": AlgorithmSerializer(algorithms, many=True).data,
            }
        )


class SelectionLogSerializer(serializers.ModelSerializer):
    property_code = serializers.CharField(source="property.code")

    class Meta:
        model = ModelSelectionLog
        fields = [
            "id",
            "property_id",
            "property_code",
            "document_type",
            "account_code",
            "data_characteristics",
            "rule_recommended_models",
            "llm_recommended_models",
            "llm_error",
            "selected_model",
            "selection_source",
            "selection_reasoning",
            "cross_validation_score",
            "actual_precision",
            "actual_recall",
            "selected_at",
        ]


class SelectionLogListApi(generics.ListAPIView):
    serializer_class = SelectionLogSerializer
    filterset_class = SelectionLogFilter
    ordering_fields = ["selected_at", "cross_validation_score"]
    ordering = ["-selected_at", "-id"]

    def get_queryset(self):
        return selectors.selection_log_list(user=self.request.user)
