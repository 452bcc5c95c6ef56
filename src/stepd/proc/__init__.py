"""Process plumbing: how a supervised child begins and stops (`childproc`), lock-free
wake-ups across processes (`wakepipe`, `wakeup`), and process names (`proctitle`)."""
