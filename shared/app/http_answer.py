"""An HTTP answer independent of azure.functions until it is sent (`to_response`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import azure.functions as func

import json
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class HttpAnswer:
    """An HTTP answer independent of azure.functions (function_app turns it into an HttpResponse)."""

    status: int
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> func.HttpResponse:
        import azure.functions as func

        return func.HttpResponse(
            json.dumps(self.body, ensure_ascii=False),
            status_code=self.status,
            headers=self.headers,
            mimetype="application/json",
            charset="utf-8",
        )
