"""Ways for other pipelines to report to stepd (each an optional extra, imported on its own).

- `stepd.integrations.luigi` (`pip install stepd[luigi]`): Luigi tasks report START,
  SUCCESS and FAILURE as `cryptaTaskEvent`s.

Any other pipeline can POST `/api/v1/task/status` or `/api/v1/events` (docs/integrations.md).
"""
