"""HTTP API of the model cache (DESIGN.md §6), mounted under /api/v1/model-cache/."""

from __future__ import annotations

import django_filters
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.filters import IdFilter
from kernel.flags import FeatureFlags
from kernel.permissions import ReadOrRequiredPermission
from modelcache import selectors, services
from modelcache.models import AnomalyModelCache

INVALIDATE_PERMISSION = "modelcache.change_anomalymodelcache"


class ModelCacheEntrySerializer(serializers.ModelSerializer):
    property_code = serializers.CharField(source="property.code", read_only=True, default=None)
    size_kb = serializers.SerializerMethodField()

    class Meta:
        model = AnomalyModelCache
        fields = [
            "id",
            "model_key",
            "property_id",
            "property_code",
            "document_type",
            "account_code",
            "model_type",
            "model_version",
            "is_active",
            "invalidated_reason",
            "generation",
            "size_bytes",
            "size_kb",
            "training_data_size",
            "training_accuracy",
            "validation_accuracy",
            "precision",
            "recall",
            "f1",
            "trained_at",
            "expires_at",
            "last_used_at",
            "use_count",
            "model_metadata",
        ]
        read_only_fields = fields

    def get_size_kb(self, obj: AnomalyModelCache) -> float:
        return round(obj.size_bytes / 1024, 1)


class ModelCacheFilter(django_filters.FilterSet):
    property = django_filters.CharFilter(field_name="property__code")
    property_id = IdFilter(field_name="property_id")
    account_code = django_filters.CharFilter()
    model_type = django_filters.CharFilter()
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = AnomalyModelCache
        fields = ["property", "property_id", "account_code", "model_type", "is_active"]


class ModelCacheListApi(generics.ListAPIView):
    """Cached models (paginated, newest first; the binary is never sent)."""

    serializer_class = ModelCacheEntrySerializer
    filterset_class = ModelCacheFilter
    ordering_fields = ["trained_at", "last_used_at", "use_count", "size_bytes", "expires_at"]

    def get_queryset(self):
        return selectors.model_cache_list(user=self.request.user)


class ModelCacheStatsApi(APIView):
    """Hit rates per tier (LRU, database) over every process as flushed, and in this process."""

    @extend_schema(responses={200: OpenApiResponse(description="hit rates and entry totals")})
    def get(self, request: Request) -> Response:
        return Response(selectors.model_cache_stats())


class ModelCacheInvalidateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=150, required=False, default="manual: API")


class ModelCacheInvalidateApi(APIView):
    """Deactivate one cached model: the next detection retrains it."""

    permission_classes = [ReadOrRequiredPermission]
    required_permission = INVALIDATE_PERMISSION

    @extend_schema(
        request=ModelCacheInvalidateSerializer,
        responses={
            200: ModelCacheEntrySerializer,
            403: OpenApiResponse(description=f"missing permission {INVALIDATE_PERMISSION}"),
            404: OpenApiResponse(description="unknown entry"),
            409: OpenApiResponse(description="the entry is already inactive"),
            503: OpenApiResponse(description="MODEL_CACHE_ENABLED is off"),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        FeatureFlags.require(services.FLAG)
        data = ModelCacheInvalidateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if not selectors.model_cache_list(user=request.user).filter(pk=pk).exists():
            raise Http404(f"No cached model {pk}")  # outside the user's portfolios reads as missing
        reason = data.validated_data["reason"]
        if not reason.startswith("manual"):
            reason = f"manual: {reason}"
        try:
            entry = services.model_cache_entry_invalidate(entry_id=pk, reason=f"{reason} (by {request.user.get_username()})")
        except AnomalyModelCache.DoesNotExist:
            raise Http404(f"No cached model {pk}") from None
        return Response(ModelCacheEntrySerializer(selectors.model_cache_list(user=request.user).get(pk=entry.pk)).data)
