"""Ponder as a local OpenAI-compatible server (`ponder-cli serve`, Model → Serve on this computer).

`catalog` lists the models served (the model manager's list plus `--model` paths) under ids a
user can type; `runner` takes the shared engine, loads the named model with the planner's
settings and starts answers; `openai_api` reads requests and writes responses in OpenAI's
shapes; `http` is the Starlette app and the uvicorn server around it. Only `http` imports the
server library, and nothing here is imported by the window until the user turns serving on.
"""

DEFAULT_HOST = "127.0.0.1"  # this computer only
DEFAULT_PORT = 8484
