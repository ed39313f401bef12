"""The function app: five functions, each a thin adapter into `shared.app` (CONTRACT.md "Function names").

Only `azure.functions` and the blob binding extension are imported here: the worker needs the
`blob.BlobClient` annotation when it indexes the app, everything else loads on the first call, so
the host's 30-second initialisation stays light (azure-functions-conventions.md P11, P12).
Renaming a function breaks the Event Grid subscription (`Host.Functions.<name>`, P4).

The HTTP handlers are `async def`: a POST waiting for its job polls with `asyncio.sleep` and holds no worker
thread (its storage calls run in a thread of their own, briefly).

HTTP_AUTH is read here, once: the worker fixes each function's auth level when it indexes the app, so a change
takes a restart (in Azure, changing an app setting restarts the app). Only the exact value `entra` makes the
import and job-status routes `ANONYMOUS`, and then the handlers check an Entra ID token themselves
(`shared.app.auth`); any other value keeps the host's function keys (health reports a value it does not know).
`health` keeps its function key in every mode.
"""

import os

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

HTTP_AUTH = os.environ.get("HTTP_AUTH", "")
ENTRA = HTTP_AUTH == "entra"  # exact: a typo keeps function keys rather than opening the routes
API_AUTH_LEVEL = func.AuthLevel.ANONYMOUS if ENTRA else func.AuthLevel.FUNCTION

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.blob_trigger(
    arg_name="client",
    path="%INDICATORS_CONTAINER%/{name}",
    connection="IndicatorStorage",
    source=func.BlobSource.EVENT_GRID,  # Flex Consumption has no polling blob trigger
)
def import_dropped_file(client: blob.BlobClient) -> None:
    """A file was dropped: queue its import job. An exception here makes the host retry."""
    from shared.app.blob_import import handle_blob

    handle_blob(client)


@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="IndicatorStorage")
def run_import_jobs(msg: func.QueueMessage, context: func.Context = None) -> None:  # type: ignore[assignment]
    """A doorbell: run the job it names (or ring it again later). An exception makes the host redeliver.

    The first doorbell of a process configures telemetry when APPLICATIONINSIGHTS_CONNECTION_STRING is set; the
    job's span is a child of the host's invocation (its W3C `traceparent`). The worker refuses to load a function
    whose `context` is annotated with anything but `func.Context` itself (not `func.Context | None`); the default
    serves callers that pass no context (the local host stand-in, tests).
    """
    from shared.app.worker import handle_doorbell

    trace = getattr(context, "trace_context", None)
    handle_doorbell(msg, traceparent=getattr(trace, "trace_parent", None) or None)


@app.route(route="indicators/import", methods=["POST"], auth_level=API_AUTH_LEVEL)
async def import_indicators(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Defender-compatible import over HTTP (Logic Apps): 200 when done in time, else 202 and a status URL."""
    from shared.app.http_import import handle_http

    return await handle_http(req, invocation_id=context.invocation_id, entra=ENTRA)


@app.route(route="indicators/import/jobs/{id}", methods=["GET"], auth_level=API_AUTH_LEVEL)
async def import_job_status(req: func.HttpRequest) -> func.HttpResponse:
    """An import job's state (202 while it runs), then its final answer (200)."""
    from shared.app.http_import import handle_status

    return await handle_status(req, entra=ENTRA)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness and whether the configuration is complete (no secrets)."""
    from shared.app.health import handle_health

    return handle_health(http_auth=HTTP_AUTH)
