"""Talking to the engine process: the client and the events a generation yields."""

from app.core.engine.client import EngineClient, EngineError, Generation
from app.core.engine.events import StreamDone, StreamError, StreamEvent, StreamStarted, TextDelta

__all__ = [
    "EngineClient",
    "EngineError",
    "Generation",
    "StreamDone",
    "StreamError",
    "StreamEvent",
    "StreamStarted",
    "TextDelta",
]
