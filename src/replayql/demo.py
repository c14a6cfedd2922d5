"""`replayql serve --demo`: a demo app with generated data and a key to try the API with at once."""

from __future__ import annotations

import orjson
from rich.console import Console

from replayql.api.context import Services
from replayql.generate import generate_batches
from replayql.ingest.importer import import_batches
from replayql.store.registry import KeyScope

DEMO_APP = "demo"


def load_demo(services: Services, sessions: int, host: str, port: int, console: Console) -> None:
    """Load the demo into an empty store and print a key and a curl command; leave a non-empty store alone."""
    registry = services.registry
    if registry.list_apps():
        console.print("the store already has apps; demo data is loaded only into an empty store. "
                      "Create a key with `replayql keys create --app demo`.")
        return
    registry.create_app(DEMO_APP)
    with console.status(f"generating and loading {sessions} demo sessions..."):
        report = import_batches((orjson.dumps(b) for b in generate_batches(DEMO_APP, sessions, seed=1)),
                                services.writer, lambda a: a == DEMO_APP, services.settings.limits)
    _, secret = registry.create_key(DEMO_APP, KeyScope.ADMIN, name="demo")
    console.print(f"loaded {report.stored} batches ({report.events} events) into app [bold]{DEMO_APP}[/bold]")
    console.print(f"API key (admin scope, shown once): [bold]{secret}[/bold]")
    console.print(f"web UI: http://{host}:{port}/ (sign in with the key)", highlight=False, soft_wrap=True)
    query = '{"query": "{ sessions(first: 3) { totalCount nodes { id browser durationMs user { id } } } }"}'
    console.print("try:\n"
                  f"  curl -s http://{host}:{port}/graphql -H 'Authorization: token {secret}' "
                  f"-H 'Content-Type: application/json' -d '{query}'", highlight=False, soft_wrap=True)
