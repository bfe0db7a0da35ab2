"""GET /api/v1/anomalies/structure: the statement structure detection learned (which lines each
total sums, the identities between totals) for one property and document type."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anomalies.selectors.structure import statement_structure_get
from documents.models import DocumentType


class StructureQuerySerializer(serializers.Serializer):
    property = serializers.IntegerField(min_value=1)
    document_type = serializers.ChoiceField(choices=DocumentType.choices)


class StatementStructureApi(APIView):
    """Learned statement structure, as sentences ("Total Revenue = the sum of the 5 lines ...")."""

    @extend_schema(
        parameters=[
            OpenApiParameter("property", int, required=True, description="property id"),
            OpenApiParameter("document_type", str, required=True),
        ],
        responses=inline_serializer(
            "StatementStructure",
            fields={
                "property_code": serializers.CharField(),
                "document_type": serializers.CharField(),
                "months": serializers.IntegerField(),
                "structure": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = StructureQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        learned = statement_structure_get(
            property_id=query.validated_data["property"],
            document_type=query.validated_data["document_type"],
            user=request.user,
        )
        if learned is None:
            return Response({"property": ["No property with this id."]}, status=404)
        return Response(
            {
                "property_code": learned.property_code,
                "document_type": learned.document_type,
                "months": learned.months,
                "structure": learned.sentences,
            }
        )
