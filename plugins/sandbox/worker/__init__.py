"""The parts of the sandbox's worker program, which `child.py` (the script the runner starts) puts
together: `isolation` (namespaces, mounts, uid, rlimits), `harness` (runs the job's cases) and
`protocol` (the JSON lines on the worker's pipe).

These modules run under `python -I -S`: standard library only, nothing from the project, and
relative imports among themselves, because in the worker this package is imported under the
top-level name `worker` (see `child.py`), not as `plugins.sandbox.worker`.
"""
