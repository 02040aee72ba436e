"""The learning worker: re-tunes validator weights, gate thresholds and tier assignments.

- `cycles/`   the three cycles, pure functions of (current values, audit samples) -> CycleResult
- `types`     the dataclasses they take and give; `stats`: logistic regression in pure Python
- `data`      reads audit rows, review verdicts and threshold history from the database
- `runner`    one run of one cycle: lock, read, compute, merge, validate, save, render the overlay
- `worker`    the APScheduler process running the cycles every 6 h / 12 h / 24 h
- `locks`     one worker acts at a time (PostgreSQL advisory lock, Redis lock, or a file lock)
- `overlay`   the rendered `config/learned.yaml`, written atomically
- `reload`    `StatePoller`: a gateway picks up the active version within seconds
- `config`    `LearningConfig` (the `gateway.learning` section); `cli`: `llm-gateway learn`

Knows no FastAPI; never on the request path (docs/adr/0003).
"""
