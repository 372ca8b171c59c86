"""procfs: what /proc says about one process (status fields, descriptors, CPU time) and about
the host (CPU time spent in processes). Values as the kernel gives them: kB, counts, seconds.
"""
import os

TICK = os.sysconf("SC_CLK_TCK")


def status(pid, keys=("VmRSS", "Threads")):
    """{key: value} of the named /proc/PID/status fields: an int where the field is a number
    (memory in kB), else its text (Cpus_allowed_list: "0-1"); a field the kernel does not
    show is absent. Raises OSError once the process is gone."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                v = v.strip()
                first = v.split()[0] if v else ""
                vals[k] = int(first) if first.isdigit() else v
    return vals


def fd_count(pid):
    """Open descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_times(pid):
    """(user, system) CPU seconds a process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # the name in parentheses may hold spaces
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    return sum(cpu_times(pid))


def host_busy_s():
    """CPU seconds all cores have spent in processes since boot (/proc/stat user + nice +
    system; irq and softirq time, where loopback packets are handled, is left out because
    no process's own figures include it either)."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    return (vals[0] + vals[1] + vals[2]) / TICK


def core_ticks():
    """{core number: (busy, softirq, total)} clock ticks since boot, one entry per core of
    /proc/stat. busy is everything but idle and iowait: user, nice, system, irq, softirq
    (where the loopback's packets are processed, for whoever sent them) and steal (time the
    hypervisor gave to someone else: the core was not ours either)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break  # the cpu lines come first
            name, *vals = line.split()
            if name == "cpu":
                continue  # the sum of all cores
            v = [int(x) for x in vals[:8]]  # guest time is already inside user
            total = sum(v)
            out[int(name[3:])] = (total - v[3] - v[4], v[6], total)
    return out


def parse_cpu_list(text):
    """The set of core numbers of a list as taskset -c and Cpus_allowed_list write it
    ("0", "0-3,6"). Raises ValueError on anything else."""
    cores = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"bad core range {part!r}")
        cores.update(range(first, last + 1))
    return cores
