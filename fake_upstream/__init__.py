"""A fake LLM upstream (OpenAI, Ollama and Anthropic APIs) over real sockets, for tests and the bench.

``FakeUpstream`` runs it in a background thread; ``create_app`` gives the ASGI app;
``python -m fake_upstream`` serves it in the foreground. Behaviour is scripted per model,
per request (queue) or in the prompt itself (``[[fake:{...}]]``): see ``behaviour``.
"""

from fake_upstream.app import create_app
from fake_upstream.behaviour import Behaviour, Script, load_script
from fake_upstream.server import FakeUpstream
from fake_upstream.state import RecordedRequest

__all__ = ["Behaviour", "FakeUpstream", "RecordedRequest", "Script", "create_app", "load_script"]
