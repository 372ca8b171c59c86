"""procs: the processes we start, and only those: spawned, run to completion with a deadline,
stopped, and killed by cleanup() (also at interpreter exit) when still running.

Each process is stopped by its own pid (never by name). The benchmark calls cleanup() on
every exit path; the test harness registers its processes with track().
"""
import atexit
import ctypes
import os
import resource
import signal
import subprocess

NOFILE = 65536  # per process; 10,000 clients need 10,000 sockets on each side

_live = []  # every Popen we started and have not reaped yet

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None
PR_SET_PDEATHSIG = 1


def child_setup():
    """preexec_fn: the child dies with us even if we are SIGKILLed (nothing left running),
    and gets a roomy open-file limit (root may raise the hard limit too)."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if os.geteuid() == 0 else hard
    want = max(want, soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        pass  # best effort: the child raises what it can itself (net_raise_nofile)


def track(p):
    """Registers a Popen started elsewhere so that stop() and cleanup() know it."""
    _live.append(p)
    return p


def spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw):
    """Starts argv in its own process group (so Ctrl-C reaches us first and we stop it),
    with child_setup() applied."""
    return track(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                  preexec_fn=child_setup, start_new_session=True, **kw))


def stop(p, sig=signal.SIGTERM, timeout=10.0):
    """Sends sig, waits up to timeout seconds, then SIGKILLs. Returns the exit code."""
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _live:
        _live.remove(p)
    return p.returncode


@atexit.register
def cleanup():
    """Kills every process still running that we started (each by its own pid)."""
    for p in list(_live):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _live.remove(p)


def run(argv, timeout, **kw):
    """Runs argv (spawn()) to completion; returns a CompletedProcess with text output.
    Raises TimeoutError, after killing it, when it runs longer than timeout seconds."""
    p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        _live.remove(p)
        raise TimeoutError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f} s")
    _live.remove(p)
    return subprocess.CompletedProcess(argv, p.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))
