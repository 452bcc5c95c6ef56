"""stepd: an open event-driven task orchestrator, compatible with the STEP API."""

__version__ = "0.1.0"

from stepd.runner.registry import TaskFailure, TaskType, command_task, http_task, task_type

__all__ = ["TaskFailure", "TaskType", "__version__", "command_task", "http_task", "task_type"]
