"""cProfile of one `inv trust-cert`, every thread included, in CPU seconds.

Usage (from the project root, settings in env SWARM_REGISTRY_CONFIG):
    .venv/bin/python bench/profile_start.py OUT.txt [--top 25] [--dump RAW.pstats]
cProfile alone sees only the main thread, which here mostly waits for the pool's workers (where
the connections and commands run). So every thread gets its own profiler, timed with
time.thread_time (that thread's CPU time: waiting on the network costs nothing), and the
profiles are merged at the end. Start-up (imports, settings) runs in the main thread and is
included: the profiler starts before `import invoke`. Nothing in the project is changed.
"""
import cProfile
import io
import os
import pstats
import sys
import threading
import time

out_path = sys.argv[1]
top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
dump = sys.argv[sys.argv.index("--dump") + 1] if "--dump" in sys.argv else None  # raw pstats file
sys.path.insert(0, os.getcwd())
profiles = []
lock = threading.Lock()
_bootstrap_inner = threading.Thread._bootstrap_inner


def bootstrap_inner(self):  # wraps run() of every thread, subclasses with their own run() too (paramiko's Transport)
    p = cProfile.Profile(time.thread_time)
    p.enable()
    try:
        _bootstrap_inner(self)
    finally:
        p.disable()
        # Snapshot here, in the thread's own clock: a profile still enabled when another thread reads it
        # would time its unfinished frames (a blocked recv) with the reader's clock.
        with lock:
            profiles.append(pstats.Stats(p))


threading.Thread._bootstrap_inner = bootstrap_inner
main = cProfile.Profile(time.thread_time)
cpu0, wall0 = time.process_time(), time.perf_counter()
main.enable()
import invoke.main  # noqa: E402

try:
    invoke.main.program.run(["inv", "trust-cert"], exit=False)
except SystemExit:
    pass
main.disable()
cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
for t in threading.enumerate():  # transports end shortly after their connections are closed
    if t is not threading.main_thread():
        t.join(timeout=2)
alive = sum(1 for t in threading.enumerate() if t is not threading.main_thread())
stats = pstats.Stats(main)
with lock:
    for p in profiles:
        stats.add(p)
if dump:
    stats.dump_stats(dump)
buf = io.StringIO()
stats.stream = buf
print(f"process CPU {cpu:.3f} s, wall {wall:.3f} s (profiler on: both inflated); {len(profiles)} finished threads "
      f"merged with the main thread ({alive} still running at the end, not included)", file=buf)
stats.sort_stats("cumulative").print_stats(top)
stats.sort_stats("tottime").print_stats(top)
with open(out_path, "w") as fh:
    fh.write(buf.getvalue())
