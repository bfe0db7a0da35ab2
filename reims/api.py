"""Project-level API views: the API root, feature flags and health."""

from __future__ import annotations

import re
from typing import Any

from django.http import JsonResponse
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.flags import FeatureFlags
from reims.health import health_report

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
API_NAMESPACE = "api"


def _methods(pattern: URLPattern) -> list[str]:
    view = pattern.callback
    actions = getattr(view, "actions", None)  # a ViewSet bound to {method: action}
    if actions:
        return sorted(method.upper() for method in actions)
    view_class = getattr(view, "view_class", None) or getattr(view, "cls", None)
    if view_class is None:
        return ["GET"]
    return [m.upper() for m in view_class.http_method_names if m not in {"options", "head"} and hasattr(view_class, m)]


def api_endpoints(*, request: Request) -> list[dict[str, Any]]:
    """Every route of the /api/v1/ namespace, read from the URLconf itself (so none is forgotten):
    its name, path template ({pk} for parameters), HTTP methods and, without parameters, its URL."""
    root = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == API_NAMESPACE)
    prefix = "/" + str(root.pattern)
    found: list[dict[str, Any]] = []

    def walk(patterns: list, path: str) -> None:
        for pattern in patterns:
            here = path + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, here)
            elif pattern.name:
                template = _CONVERTER.sub(r"{\1}", here)
                url = None if "{" in template else request.build_absolute_uri(reverse(f"{API_NAMESPACE}:{pattern.name}"))
                found.append({"name": pattern.name, "path": template, "methods": _methods(pattern), "url": url})

    walk(root.url_patterns, prefix)
    return found


class ApiRootApi(APIView):
    """GET /api/v1/: every endpoint of the API, with the schema and the two documentation pages."""

    class EndpointSerializer(serializers.Serializer):
        name = serializers.CharField()
        path = serializers.CharField()
        methods = serializers.ListField(child=serializers.CharField())
        url = serializers.URLField(allow_null=True)

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            fields={
                "schema": serializers.URLField(),
                "docs": serializers.URLField(),
                "redoc": serializers.URLField(),
                "endpoints": EndpointSerializer(many=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "schema": request.build_absolute_uri(reverse("schema")),
                "docs": request.build_absolute_uri(reverse("api-docs")),
                "redoc": request.build_absolute_uri(reverse("api-redoc")),
                "endpoints": self.EndpointSerializer(api_endpoints(request=request), many=True).data,
            }
        )


class FeatureFlagListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        env_var = serializers.CharField()
        enabled = serializers.BooleanField()
        available = serializers.BooleanField(help_text="false: this release does not implement the feature")
        state = serializers.CharField(help_text='"on", "off" or "not available in this release"')
        default = serializers.BooleanField()
        description = serializers.CharField()

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
