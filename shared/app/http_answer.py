"""An HTTP answer independent of azure.functions until it is sent (`to_response`)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class HttpAnswer:
    """An HTTP answer independent of azure.functions (function_app turns it into an HttpResponse)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> Any:
        import azure.functions as func

        return func.HttpResponse(
            json.dumps(self.body, ensure_ascii=False),
            status_code=self.status,
            headers=self.headers,
            mimetype="application/json",
            charset="utf-8",
        )
