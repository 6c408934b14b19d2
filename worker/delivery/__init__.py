"""Delivery: at least once, from the org's outbox under the org's own RLS token.

Owns the bookkeeping of what was seen and finished and how far the checkpoint may move
(``ledger``, pure), catch-up passes that read what Realtime missed (``catchup``, also the
live path's dedupe gate), the outbox RPCs (``outbox``), the batched checkpoint saver
(``checkpointer``) and the app's one delivery child (``service.Delivery``). Never touches
Realtime or the handlers: events go into the dispatcher's ``put``, and the dispatcher's
``on_done`` (``finisher``) reports what finished.
"""

from worker.delivery.catchup import CatchUp, CatchUpMetrics, CatchUpStatistics, finisher
from worker.delivery.checkpointer import Checkpointer, CheckpointMetrics
from worker.delivery.ledger import Checkpoint, Ledger, Outbox, Position, Progress, SeenIds
from worker.delivery.outbox import OutboxOperation, OutboxStore
from worker.delivery.service import Delivery, DeliveryMetrics

__all__ = [
    "CatchUp",
    "CatchUpMetrics",
    "CatchUpStatistics",
    "Checkpoint",
    "CheckpointMetrics",
    "Checkpointer",
    "Delivery",
    "DeliveryMetrics",
    "Ledger",
    "Outbox",
    "OutboxOperation",
    "OutboxStore",
    "Position",
    "Progress",
    "SeenIds",
    "finisher",
]
