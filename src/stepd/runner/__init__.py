"""The runner: task types, dispatch by priority and semaphores, and the executors."""
