"""`GET /api/health`: liveness plus whether the configuration is complete (no secrets in the answer)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import azure.functions as func

import logging
import os
from collections.abc import Mapping

from shared.app.http_answer import HttpAnswer
from shared.app.runtime import AppOptions, lock_container_problem
from shared.core.settings import Settings, SettingsError
from shared.storage.blobs import (
    ConnectionSettingsError,
    parse_connection,
)

log = logging.getLogger(__name__)


def handle_health(env: Mapping[str, str] | None = None) -> func.HttpResponse:
    return health_answer(env).to_response()


def health_answer(env: Mapping[str, str] | None = None) -> HttpAnswer:
    """Liveness plus whether the configuration is complete. Names settings, never their secret values."""
    env = os.environ if env is None else env
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = Settings.from_env(env)
    except SettingsError as e:
        problems.append(str(e))
    try:
        options = AppOptions.from_env(env)
    except SettingsError as e:
        problems.append(str(e))
        options = AppOptions()
    if settings is not None:
        # Checked as Runtime.from_env checks it: health must not say "complete" when every import would fail.
        problem = lock_container_problem(settings, options)
        if problem:
            problems.append(problem)
        if settings.capacity_reserve >= settings.max_tenant_indicators:
            problems.append(
                f"CAPACITY_RESERVE ({settings.capacity_reserve}) leaves no room under MAX_TENANT_INDICATORS "
                f"({settings.max_tenant_indicators}): every new indicator would be skipped for tenant capacity"
            )
    storage = None
    try:
        storage = parse_connection(env).describe()
    except ConnectionSettingsError as e:
        problems.append(str(e))
    body: dict[str, object] = {
        "status": "ok" if not problems else "misconfigured",
        "configurationComplete": not problems,
        "problems": problems,
        "storage": storage,
        "lockContainer": options.lock_container,
    }
    if settings is not None:
        body.update(
            {
                "defenderApiUrl": settings.defender_api_url,
                "tokenScope": settings.defender_token_scope,
                "managedIdentity": "user-assigned" if settings.azure_client_id else "system-assigned or developer",
                "indicatorsContainer": settings.indicators_container,
                "reportsContainer": settings.reports_container,
                "dryRun": settings.dry_run,
            }
        )
    # 200 either way: this is a liveness probe; a platform health check must not recycle the
    # instance over a setting only an operator can fix. `configurationComplete` tells the story.
    return HttpAnswer(200, body)
