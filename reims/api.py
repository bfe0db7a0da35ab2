"""Project-level API views: feature flags and health."""

from __future__ import annotations

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.flags import FeatureFlags
from reims.health import health_report


class FeatureFlagListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        env_var = serializers.CharField()
        enabled = serializers.BooleanField()
        default = serializers.BooleanField()
        description = serializers.CharField()
        available = serializers.BooleanField()
        status = serializers.CharField(help_text='"on", "off" or "not available in this release"')

    @extend_schema(
        responses=inline_serializer(
            "FeatureFlags",
            fields={
                "flags": serializers.DictField(child=serializers.BooleanField()),
                "details": OutputSerializer(many=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "flags": FeatureFlags.get_all_flags(),
                "details": self.OutputSerializer(FeatureFlags.describe(), many=True).data,
            }
        )


def healthz(request) -> JsonResponse:
    """Open to anyone (load balancers): 200 when database and broker answer, else 503."""
    ok, report = health_report()
    return JsonResponse({"status": "ok" if ok else "unavailable", "checks": report}, status=200 if ok else 503)
