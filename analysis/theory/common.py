"""common: small helpers the theory experiments share: progress lines, a command's output, a
file's text, and thinning a series of samples down to about a dozen for the documents."""
import subprocess


def log(msg):
    print(f"theory: {msg}", flush=True)


def sh(argv, timeout=30):
    """stdout + stderr of argv as text (a tool's report, whatever its exit status)."""
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


def read_file(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"unreadable ({e.strerror})"


def thin(samples, about=12):
    """About `about` evenly spaced samples, the last one always kept."""
    step = max(1, len(samples) // about)
    keep = samples[::step]
    if samples and samples[-1] is not keep[-1]:
        keep.append(samples[-1])
    return keep
