"""Built-in handlers, enabled through ``WORKER_HANDLERS``.

* ``worker.handlers.log``: one structured log line per event, on every topic;
* ``worker.handlers.webhook``: POST each event, signed, to ``WORKER_WEBHOOK_URL``.

Handlers use only the handler-facing API (``Event``, ``Context``, ``on``, ``Retry``,
``NonRetryable``), like any user's; they never touch Realtime, tokens or delivery.
"""

__all__: list[str] = []
