"""Each task endpoint declares a typed response: /docs (the OpenAPI schema) shows its rows,
and every row model has exactly the fields of the app's result dataclass."""

from __future__ import annotations

import dataclasses

import pytest

from quintet.apps.classification.api import Classification
from quintet.apps.qa.api import Answer
from quintet.apps.server.app import create_app
from quintet.apps.server.config import ServerConfig
from quintet.apps.server.schemas import (
    AnswerRow,
    ChunkRow,
    ClassificationRow,
    SummaryRow,
    TranslationRow,
)
from quintet.apps.summarization.api import ChunkInfo, SummaryResult
from quintet.apps.translation.api import TranslationResult


@pytest.mark.parametrize(
    ("result", "row"),
    [(TranslationResult, TranslationRow), (SummaryResult, SummaryRow), (ChunkInfo, ChunkRow),
     (Answer, AnswerRow), (Classification, ClassificationRow)],
)  # fmt: skip
def test_every_row_model_mirrors_its_result_dataclass(result, row) -> None:
    assert [f.name for f in dataclasses.fields(result)] == list(row.model_fields)


def test_the_openapi_schema_shows_each_task_response() -> None:
    schema = create_app(ServerConfig(models=("minilm-l6",))).openapi()
    rows = {
        "/v1/translate": "TranslationRow",
        "/v1/summarize": "SummaryRow",
        "/v1/qa": "AnswerRow",
        "/v1/classify": "ClassificationRow",
    }
    for path, row in rows.items():
        ok = schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        response = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
        assert response["properties"]["results"]["items"] == {"$ref": f"#/components/schemas/{row}"}
    answer = schema["components"]["schemas"]["AnswerRow"]["properties"]
    assert answer["start"]["type"] == "integer" and answer["probability"]["type"] == "number"
