"""The function app: three triggers, each a thin adapter into `shared.app` (CONTRACT.md "Function names").

Only `azure.functions` and the blob binding extension are imported here: the worker needs the
`blob.BlobClient` annotation when it indexes the app, everything else loads on the first call, so
the host's 30-second initialisation stays light (azure-functions-conventions.md P11, P12).
Renaming a function breaks the Event Grid subscription (`Host.Functions.<name>`, P4).
"""

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.blob_trigger(
    arg_name="client",
    path="%INDICATORS_CONTAINER%/{name}",
    connection="IndicatorStorage",
    source=func.BlobSource.EVENT_GRID,  # Flex Consumption has no polling blob trigger
)
def import_dropped_file(client: blob.BlobClient) -> None:
    """A file was dropped: import it and write its report. An exception here makes the host retry."""
    from shared.app.blob_import import handle_blob

    handle_blob(client)


@app.route(route="indicators/import", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def import_indicators(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """Defender-compatible import over HTTP (Logic Apps)."""
    from shared.app.http_import import handle_http

    return handle_http(req, invocation_id=context.invocation_id)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness and whether the configuration is complete (no secrets)."""
    from shared.app.health import handle_health

    return handle_health()
