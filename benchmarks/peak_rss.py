"""Print the peak RSS (MB) of a command, measured from a small launcher.

Linux charges a vfork'ed child with its parent's memory high-water mark at exec, so a child
spawned straight from a big process (the benchmark, with its sandbox holding 50 MB assets)
reports that parent's peak. This launcher is small; what it reports is the command's own peak
(the largest of the command and the children it waited for).

Usage: python peak_rss.py EXECUTABLE [ARGS...]     (EXECUTABLE: a path; PATH is not searched)
"""

import os
import sys

pid = os.posix_spawn(
    sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
)
_, status, usage = os.wait4(pid, 0)
print(f"{usage.ru_maxrss / 1024:.1f}")
sys.exit(os.waitstatus_to_exitcode(status))
