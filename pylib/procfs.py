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
