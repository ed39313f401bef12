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
from shared.core.jobs import JobRecord
from shared.core.settings import Settings, SettingsError
from shared.storage.blobs import (
    ConnectionSettingsError,
    parse_connection,
)

log = logging.getLogger(__name__)


def handle_health(env: Mapping[str, str] | None = None, *, http_auth: str | None = None) -> func.HttpResponse:
    return health_answer(env, http_auth=http_auth).to_response()


def health_answer(
    env: Mapping[str, str] | None = None, *, with_jobs: bool = True, http_auth: str | None = None
) -> HttpAnswer:
    """Liveness plus whether the configuration is complete. Names settings, never their secret values.

    `http_auth`: the HTTP_AUTH value function_app.py indexed the routes with (read at import; a change needs a
    restart); None reads it from `env`."""
    env = os.environ if env is None else env
    problems: list[str] = []
    auth_section = http_auth_section(env, env.get("HTTP_AUTH", "") if http_auth is None else http_auth, problems)
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
        "stateContainer": options.state_container,
        "jobsQueue": options.jobs_queue,
        "jobsContainer": options.jobs_container,
        "ignoredSettings": list(options.ignored),
        "httpAuth": auth_section,
    }
    if storage is not None and with_jobs:
        body["jobs"] = job_counts(env, options)
    if settings is not None:
        body.update(
            {
                "defenderApiUrl": settings.defender_api_url,
                "tokenScope": settings.defender_token_scope,
                "managedIdentity": "user-assigned" if settings.azure_client_id else "system-assigned or developer",
                "indicatorsContainer": settings.indicators_container,
                "reportsContainer": settings.reports_container,
                "dryRun": settings.dry_run,
                "limits": {
                    "maxValueLength": settings.max_value_length,
                    "maxGzipBytes": settings.max_gzip_bytes,
                    "maxGzipRatio": settings.max_gzip_ratio,
                    "duplicateIndexMaxMB": settings.duplicate_index_max_mb,
                },
            }
        )
    # 200 either way: this is a liveness probe; a platform health check must not recycle the
    # instance over a setting only an operator can fix. `configurationComplete` tells the story.
    return HttpAnswer(200, body)


def http_auth_section(env: Mapping[str, str], raw: str, problems: list[str]) -> dict[str, object]:
    """Which HTTP auth mode is on and whether its settings are complete (adds to `problems`; never a token)."""
    from shared.app.auth import ENTRA, AuthSettings, auth_settings_problems, http_auth_mode

    mode, problem = http_auth_mode(raw)
    section: dict[str, object] = {"mode": mode}
    if problem:
        problems.append(problem)
        section["invalidValue"] = raw[:40]
    if mode == ENTRA:
        missing = auth_settings_problems(env)
        problems.extend(missing)
        section["complete"] = not missing
        if not missing:
            section.update(AuthSettings.from_env(env).describe())
    return section


def job_counts(env: Mapping[str, str], options: AppOptions) -> dict[str, object]:
    """Jobs by state and the oldest one not final (for blob drops, whose state has no status route)."""
    from shared.storage.blobs import service_client
    from shared.storage.jobs import JobStore

    try:
        # One quick try: health answers in a second or two even when storage does not.
        service = service_client(parse_connection(env), retry_total=0, connection_timeout=3, read_timeout=10)
        store = JobStore(service.get_container_client(options.jobs_container))
        counts: dict[str, int] = {}
        oldest: JobRecord | None = None
        for record in store.records():
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
            if not record.final and (oldest is None or record.created_at < oldest.created_at):
                oldest = record
    except Exception as e:  # storage unreachable: health still answers, and says so
        return {"error": f"the job records could not be read ({type(e).__name__})"}
    out: dict[str, object] = {"byState": counts}
    if oldest is not None:
        out["oldestPending"] = {"id": oldest.id, "kind": oldest.kind, "state": oldest.state.value,
                                "createdAt": oldest.created_at, "nextAttemptAt": oldest.next_attempt_at}  # fmt: skip
    return out
