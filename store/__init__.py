"""The audit store: schema, migrations, the off-hot-path audit sink and its durable spool.

Modules (import what you need; nothing is built at import time):

- `store.models`: SQLAlchemy models (`AuditLog`, `ReviewItem`, `LearnedState`, `ApiKey`).
- `store.db`: `make_engine`, `session_factory`, `migrate` (Alembic, `store/migrations`).
- `core.records` (the leaf package) holds `AuditRecord`, what the pipeline hands to the sink.
- `store.audit_sink`: `AuditSink` (batching writer, spool fallback, replay).
- `store.spool`: `Spool`, the fsync'd JSON-lines spool.
- `store.writer`: `AuditWriter`, idempotent bulk inserts (audit rows + review items).
- `store.redact`: content policy (`none | review_only | all`) and secret redaction.
- `store.retention`: `purge_older_than`.
- `store.queries`: audit/review/API-key/learned-state queries for the API and the learner.
"""
