#!/usr/bin/env python3
"""sentinel side by side with its peers, measured interleaved in one run.

Called by scripts/bench/run (which installs the peers and builds sentinel);
writes a markdown report. A benchmark, never a test: it never fails on a
figure. Every process it starts is killed on exit, even on error.

Usage: scripts/bench/peers.py [--quick] [--bin target/release/sentinel] [--out docs/benchmarks.md]
"""
import argparse, datetime, json, os, platform, shlex, shutil, signal, statistics
import subprocess, sys, tempfile, time

SLEEP = "100000"
STAMP = None  # the compiled stamp program (see build_stamp), the victim of measurement 3
LIVE = []  # every Tool started and not yet stopped, for the cleanup in main()


# ---------------------------------------------------------------- /proc


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    out += [int(p) for p in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def tree(root):
    seen, todo = [], [root]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def smaps(pid):
    out = {"Rss": 0, "Pss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in out:
                    out[k] = int(rest.split()[0])
    except OSError:
        pass
    return out


def smaps_split(pid):
    """RSS by kind of mapping, KiB: the binary, shared libraries, heap, other."""
    out = {"binary": 0, "shared libraries": 0, "heap": 0, "other anonymous": 0, "stack": 0}
    exe = os.path.realpath(f"/proc/{pid}/exe")
    name = ""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    name = parts[5] if len(parts) > 5 else ""
                elif first == "Rss:":
                    kb = int(line.split()[1])
                    if name == exe:
                        out["binary"] += kb
                    elif name.startswith("/"):
                        out["shared libraries"] += kb
                    elif name == "[heap]":
                        out["heap"] += kb
                    elif name == "[stack]":
                        out["stack"] += kb
                    else:
                        out["other anonymous"] += kb
    except OSError:
        pass
    return out


def cpu_ctx(pid):
    """(utime+stime ticks, voluntary+nonvoluntary context switches), all threads."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        ctx = 0
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        ctx += int(line.split()[1])
        return ticks, ctx
    except (OSError, IndexError):
        return 0, 0


def wait(cond, limit=120.0, spin=False):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        if not spin:
            time.sleep(0.005)
    raise TimeoutError("deadline passed")


def kill_tree(pids):
    """SIGKILL every pid, then wait (5 s at most) until each is gone or a zombie
    (orphans are reaped by whoever is PID 1), so the next measurement starts clean."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass

    def gone():
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        return False
            except (OSError, IndexError):
                pass
        return True
    try:
        wait(gone, limit=5)
    except TimeoutError:
        pass


# ---------------------------------------------------------------- the tools


class Tool:
    """One supervisor with n sleep services (plus a victim service if asked:
    the stamp program, which appends its CLOCK_MONOTONIC start time to
    `self.stamps`, then waits)."""
    name = "?"
    how = ""

    def __init__(self, n, victim=False, crash=None):
        self.n, self.victim, self.crash = n, victim, crash  # crash: a shell line run as the only service
        self.d = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.proc = None
        self.services = [f"s{i}" for i in range(n)]
        self.stamps = f"{self.d}/stamps"
        self.extra = ""  # more config text (sentinel: an [http] table)

    def victim_argv(self):
        return [STAMP, self.stamps]

    def victim_pid(self):
        want = "\0".join(self.victim_argv()) + "\0"
        return next((p for p in tree(self.root()) if cmdline(p) == want), None)

    def total(self):
        return self.n + (1 if self.victim else 0)

    def root(self):
        return self.proc.pid

    def start(self):
        self.write()
        LIVE.append(self)
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.d)
        return self

    def sleeps(self):
        return [p for p in tree(self.root()) if comm(p) == "sleep"]

    def supervisor_pids(self):
        """The supervisor's own processes: the tree minus the services."""
        return [p for p in tree(self.root()) if comm(p) != "sleep"]

    def wait_running(self, limit=120.0):
        wait(lambda: len(self.sleeps()) >= self.n and (not self.victim or self.victim_pid()), limit)

    def stop(self):
        if self in LIVE:
            LIVE.remove(self)
        if self.proc is None:
            return
        pids = tree(self.root())
        kill_tree(pids)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        shutil.rmtree(self.d, ignore_errors=True)


class Sentinel(Tool):
    name = "sentinel"
    how = '`sentinel run -c s.toml`; `[services.sN] command = ["sleep","100000"]`, victim with `backoff = { initial = "0s" }`'
    bin = "target/release/sentinel"

    def write(self):
        with open(f"{self.d}/s.toml", "w") as f:
            f.write(f'[supervisor]\nsocket = "{self.d}/s.sock"\n')
            if self.crash:  # default restart policy and backoff
                f.write(f'[services.crash]\ncommand = ["sh", "-c", {json.dumps(self.crash)}]\n')
            for s in self.services:
                f.write(f'[services.{s}]\ncommand = ["sleep", "{SLEEP}"]\n')
            if self.victim:
                f.write(f'[services.victim]\ncommand = {json.dumps(self.victim_argv())}\nbackoff = {{ initial = "0s" }}\n')
            f.write(self.extra)

    def argv(self):
        return [self.bin, "run", "-c", f"{self.d}/s.toml"]


class Supervisord(Tool):
    name = "supervisord"
    how = "`supervisord -n -c s.ini`; `[program:sN] command=sleep 100000`, `startsecs=0`, `autorestart=true`, logs `NONE`"

    def write(self):
        with open(f"{self.d}/s.ini", "w") as f:
            f.write(f"[supervisord]\nnodaemon=true\nlogfile={self.d}/supervisord.log\n"
                    f"pidfile={self.d}/supervisord.pid\nminfds=8192\nchildlogdir={self.d}\n")
            progs = [(s, f"sleep {SLEEP}") for s in self.services] + ([("victim", shlex.join(self.victim_argv()))] if self.victim else [])
            if self.crash:
                progs = [("crash", "sh -c " + shlex.quote(self.crash))]
            for s, cmd in progs:
                f.write(f"[program:{s}]\ncommand={cmd}\nstartsecs=0\nautorestart=true\n"
                        "stdout_logfile=NONE\nstderr_logfile=NONE\n")
            f.write(self.extra)

    def argv(self):
        return ["supervisord", "-n", "-c", f"{self.d}/s.ini"]


class Runit(Tool):
    name = "runit"
    how = "`runsvdir DIR`; `DIR/sN/run` = `#!/bin/sh` + `exec sleep 100000` (runsv respawns at once, unless the service ran less than 1 s)"

    def write(self):
        progs = [(s, f"exec sleep {SLEEP}") for s in self.services] + ([("victim", "exec " + shlex.join(self.victim_argv()))] if self.victim else [])
        if self.crash:
            progs = [("crash", self.crash)]
        for s, line in progs:
            os.makedirs(f"{self.d}/sv/{s}")
            with open(f"{self.d}/sv/{s}/run", "w") as f:
                f.write(f"#!/bin/sh\n{line}\n")
            os.chmod(f"{self.d}/sv/{s}/run", 0o755)

    def argv(self):
        return ["runsvdir", f"{self.d}/sv"]


class S6(Runit):
    name = "s6"
    how = "`s6-svscan DIR`; `DIR/sN/run` = `#!/bin/sh` + `exec sleep 100000` (no `finish`; s6-supervise has no setting to respawn sooner than 1 s after a death)"

    def argv(self):
        return ["s6-svscan", f"{self.d}/sv"]


class Pm2(Tool):
    name = "pm2"
    how = "`pm2 start eco.json` (`script: sleep`, `interpreter: none`, `autorestart: true`, `restart_delay: 0`), PM2_HOME in a temp dir"

    def write(self):
        progs = [(s, "sleep", [SLEEP]) for s in self.services] + ([("victim", STAMP, [self.stamps])] if self.victim else [])
        if self.crash:
            progs = [("crash", "sh", ["-c", self.crash])]
        apps = [{"name": s, "script": script, "args": arg, "interpreter": "none", "autorestart": True,
                 "restart_delay": 0, "out_file": "/dev/null", "error_file": "/dev/null"} for s, script, arg in progs]
        with open(f"{self.d}/eco.json", "w") as f:
            json.dump({"apps": apps}, f)

    def start(self):
        self.write()
        LIVE.append(self)
        self.env = dict(os.environ, PM2_HOME=f"{self.d}/home")
        subprocess.run(["pm2", "start", f"{self.d}/eco.json"], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        with open(f"{self.d}/home/pm2.pid") as f:
            self.pid = int(f.read())
        return self

    def root(self):
        return self.pid

    def stop(self):
        if self in LIVE:
            LIVE.remove(self)
        pids = tree(self.pid) if hasattr(self, "pid") else []
        kill_tree(pids)
        shutil.rmtree(self.d, ignore_errors=True)


def tools(with_pm2):
    ts = [Sentinel, Supervisord, Runit, S6]
    if with_pm2:
        ts.append(Pm2)
    return ts


# ---------------------------------------------------------------- stats / report


def summary(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[0], xs[-1]


def fmt(v, unit=""):
    if isinstance(v, float) and v != int(v):
        return f"{v:.3f}{unit}" if abs(v) < 10 else f"{v:.1f}{unit}"
    return f"{int(v)}{unit}"


def table(rows, unit, base="sentinel", lower_is_better=True):
    """rows: {tool: [samples]} -> markdown lines + a 'what stands in the way' hint."""
    out = [f"| tool | median | min – max | ratio to {base} |", "|---|---:|---:|---:|"]
    meds = {t: summary(v)[0] for t, v in rows.items() if v}
    b = meds.get(base)
    for t, v in rows.items():
        if not v:
            out.append(f"| {t} | – | – | – |")
            continue
        m, lo, hi = summary(v)
        r = "–" if not b else f"{m / b:.2f}"
        if b == 0:
            r = "∞" if m else "1.00"
        out.append(f"| {t} | {fmt(m, unit)} | {fmt(lo, unit)} – {fmt(hi, unit)} | {r} |")
    # within 2 % of sentinel counts as a tie, not as "better"
    better = [t for t, m in meds.items() if not t.startswith(base.split()[0]) and b is not None
              and (m < b * 0.98 if lower_is_better else m > b * 1.02)]
    return out, better


# ---------------------------------------------------------------- measurements


def measure_memory(cls_list, sizes, reps, log):
    res = {n: {c.name: {"Rss": [], "Pss": [], "start": [], "split": {}} for c in cls_list} for n in sizes}
    for n in sizes:
        for r in range(reps):
            for cls in cls_list:
                t = cls(n)
                try:
                    t0 = time.perf_counter()
                    t.start()
                    t.wait_running()
                    res[n][cls.name]["start"].append((time.perf_counter() - t0) * 1000)
                    time.sleep(1)  # let start-up allocations settle
                    pids = t.supervisor_pids()
                    tot = {"Rss": 0, "Pss": 0}
                    for p in pids:
                        m = smaps(p)
                        tot["Rss"] += m["Rss"]
                        tot["Pss"] += m["Pss"]
                    for k in tot:
                        res[n][cls.name][k].append(tot[k])
                    if cls.name == "sentinel" and r == 0:
                        res[n][cls.name]["split"] = smaps_split(pids[0])
                    log(f"memory n={n} rep={r} {cls.name}: {len(pids)} procs RSS {tot['Rss']} KiB PSS {tot['Pss']} KiB")
                except TimeoutError:
                    log(f"memory n={n} rep={r} {cls.name}: services did not all start before the deadline")
                finally:
                    t.stop()
    return res


def measure_idle(cls_list, n, secs, reps, log):
    """All supervisors run at once, each with n services, over the same window."""
    res = {c.name: {"ticks": [], "ctx": []} for c in cls_list}
    for r in range(reps):
        ts = []
        try:
            for cls in cls_list:
                ts.append(cls(n).start())
            for t in ts:
                t.wait_running()
            time.sleep(2)
            before = {}
            for t in ts:
                before[t.name] = {p: cpu_ctx(p) for p in t.supervisor_pids()}
            time.sleep(secs)
            for t in ts:
                dt = dc = 0
                for p, (t0, c0) in before[t.name].items():
                    t1, c1 = cpu_ctx(p)
                    if t1 or c1:
                        dt += t1 - t0
                        dc += c1 - c0
                res[t.name]["ticks"].append(dt)
                res[t.name]["ctx"].append(dc)
                log(f"idle rep={r} {t.name}: {dt} ticks, {dc} context switches in {secs} s")
        finally:
            for t in ts:
                t.stop()
    return res


STAMP_C = r"""
#include <stdio.h>
#include <time.h>
#include <unistd.h>
/* The victim of measurement 3: append CLOCK_MONOTONIC (ns) to argv[1] at
   once after exec, then wait for a signal. */
int main(int argc, char **argv) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    FILE *f = argc > 1 ? fopen(argv[1], "a") : NULL;
    if (!f) return 2;
    fprintf(f, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    fclose(f);
    for (;;) pause();
}
"""


def build_stamp(d):
    """Compile the stamp program (static when the C library allows it, so no
    dynamic loading sits between exec and the stamp)."""
    src, out = f"{d}/stamp.c", f"{d}/stamp"
    with open(src, "w") as f:
        f.write(STAMP_C)
    for extra in (["-static"], []):
        if subprocess.run(["cc", "-O2", *extra, "-o", out, src], capture_output=True).returncode == 0:
            return out, "static" if extra else "dynamic"
    raise RuntimeError("cc could not build the stamp program")


def last_stamp(path):
    try:
        with open(path) as f:
            xs = f.read().split()
        return len(xs), int(xs[-1]) if xs else None
    except (OSError, ValueError):
        return 0, None


def measure_restart(cls_list, kills, log):
    """All supervisors run at once with one victim each: the stamp program,
    which writes its CLOCK_MONOTONIC start time to a file. Each round
    SIGKILLs every victim in turn; the latency is the replacement's stamp
    minus the monotonic time just before the kill (the poll for the new
    line is not on the measured path). 1.2 s between rounds (runsv
    respawns at once only a service that ran at least 1 s)."""
    res = {c.name: [] for c in cls_list}
    ts = []
    try:
        for cls in cls_list:
            ts.append(cls(0, victim=True).start())
        for t in ts:
            t.wait_running()
        time.sleep(1.5)
        for k in range(kills):
            for t in ts:
                victim = t.victim_pid()
                if victim is None:
                    log(f"restart {t.name}: no victim found")
                    continue
                n0, _ = last_stamp(t.stamps)
                t0 = time.monotonic_ns()
                os.kill(victim, signal.SIGKILL)
                try:
                    wait(lambda: last_stamp(t.stamps)[0] > n0, limit=10)
                    res[t.name].append((last_stamp(t.stamps)[1] - t0) / 1e6)
                    wait(t.victim_pid, limit=2)  # its pid is known for the next round
                except TimeoutError:
                    log(f"restart {t.name}: no replacement within 10 s")
            time.sleep(1.2)
        for t in ts:
            if res[t.name]:
                log(f"restart {t.name}: median {statistics.median(res[t.name]):.3f} ms over {len(res[t.name])}")
    finally:
        for t in ts:
            t.stop()
    return res


def measure_crash(cls_list, secs, log):
    """All supervisors at once, each with one service that exits 1 at once
    (each at its default restart settings, except supervisord which needs
    startsecs=0 to keep restarting): starts counted in a file, supervisor CPU."""
    res = {c.name: {"starts": [], "ticks": []} for c in cls_list}
    ts = []
    try:
        for cls in cls_list:
            d = tempfile.mkdtemp(prefix="bench-crash-")
            t = cls(0, crash=f"echo x >> {d}/starts; exit 1")
            t.count = f"{d}/starts"
            t.count_dir = d
            ts.append(t.start())
        time.sleep(1)
        before = {}
        for t in ts:
            pids = [p for p in tree(t.root()) if comm(p) not in ("sh", "sleep")]
            before[t.name] = ({p: cpu_ctx(p)[0] for p in pids}, lines(t.count))
        time.sleep(secs)
        for t in ts:
            ticks = sum(cpu_ctx(p)[0] - t0 for p, t0 in before[t.name][0].items() if cpu_ctx(p)[0])
            starts = lines(t.count) - before[t.name][1]
            res[t.name]["starts"].append(starts)
            res[t.name]["ticks"].append(ticks)
            log(f"crash loop {t.name}: {starts} starts, {ticks} ticks in {secs} s")
    finally:
        for t in ts:
            t.stop()
            shutil.rmtree(t.count_dir, ignore_errors=True)
    return res


def lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


REAP = ('i=0; while [ $i -lt {n} ]; do (sleep 0.01 &); i=$((i+1)); done; '
        'while pgrep -x sleep >/dev/null; do sleep 0.01; done')


def reap_cmds(sbin, n):
    script = REAP.format(n=n)
    pre = ["unshare", "--pid", "--fork", "--mount-proc"]
    return {
        "sentinel": pre + [sbin, "exec", "--", "sh", "-c", script],
        "tini": pre + ["tini", "--", "sh", "-c", script],
        "dumb-init": pre + ["dumb-init", "sh", "-c", script],
    }


def measure_reap(sbin, n, reps, log):
    cmds = reap_cmds(sbin, n)
    res = {k: [] for k in cmds}
    for r in range(reps):
        for k, argv in cmds.items():
            t0 = time.perf_counter()
            p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
            dt = (time.perf_counter() - t0) * 1000
            if p.returncode == 0:
                res[k].append(dt)
            log(f"reap n={n} rep={r} {k}: {dt:.0f} ms (exit {p.returncode})")
    return res, cmds


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def http_time(port, method, path, body=None, headers=None):
    """(milliseconds, response bytes) of one request on a new loopback connection."""
    import http.client
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    dt = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        raise RuntimeError(f"{method} {path}: HTTP {r.status}")
    return dt, len(data)


XMLRPC_ALL = (b"<?xml version='1.0'?><methodCall><methodName>supervisor.getAllProcessInfo"
              b"</methodName><params></params></methodCall>")


def measure_scrape(n, rounds, log):
    """sentinel's /metrics with n services, fresh (the 1 s cache expired) and
    cached, against supervisord's nearest equivalent: the XML-RPC call
    getAllProcessInfo on its [inet_http_server]. Both run at once; each
    round asks each in turn, 1.1 s apart."""
    res = {"sentinel (fresh)": [], "sentinel (cached)": [], "supervisord getAllProcessInfo": []}
    size = {}
    ts = []
    try:
        s = Sentinel(n)
        sp = free_port()
        s.extra = f'[http]\nlisten = "127.0.0.1:{sp}"\n'
        v = Supervisord(n)
        vp = free_port()
        v.extra = (f"[inet_http_server]\nport=127.0.0.1:{vp}\n[rpcinterface:supervisor]\n"
                   "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n")
        ts = [s.start(), v.start()]
        for t in ts:
            t.wait_running()
        time.sleep(2)
        for r in range(rounds):
            dt, size["sentinel"] = http_time(sp, "GET", "/metrics")
            res["sentinel (fresh)"].append(dt)
            dt, _ = http_time(sp, "GET", "/metrics")
            res["sentinel (cached)"].append(dt)
            dt, size["supervisord"] = http_time(vp, "POST", "/RPC2", XMLRPC_ALL, {"Content-Type": "text/xml"})
            res["supervisord getAllProcessInfo"].append(dt)
            time.sleep(1.1)
        for k, v_ in res.items():
            log(f"scrape {k}: median {statistics.median(v_):.2f} ms")
    finally:
        for t in ts:
            t.stop()
    return res, size


SLOW_SERVER = """
import socket, time
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept()
    c.recv(4096)
    time.sleep(0.002)
    c.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n")
    c.close()
"""


def measure_cluster(sbin, probe, counts, secs, rounds, log):
    """requests/s of wrk against one service behind one `listen` socket run
    as 1 and as 4 instances, rounds interleaved, for two servers that take
    one connection at a time: `probe --serve` (CPU only: answers at once)
    and a python server that waits 2 ms per request (a handler that waits
    on I/O, as a blocking app server does)."""
    servers = {"probe": ([probe, "--serve"], "sentinel-probe"),
               "python, 2 ms wait": (["python3", "-c", SLOW_SERVER], "python3")}
    res = {(srv, k): [] for srv in servers for k in counts}
    errs = {key: 0 for key in res}
    for r in range(rounds):
        for srv, (argv, name) in servers.items():
            for k in counts:
                t = Sentinel(0)
                port = free_port()
                t.extra = (f'[services.web]\ncommand = {json.dumps(argv)}\n'
                           f'instances = {k}\nlisten = ["tcp:127.0.0.1:{port}"]\n')
                try:
                    t.start()
                    wait(lambda: sum(comm(p) == name for p in tree(t.root())) >= k, limit=30)
                    out = subprocess.run(["wrk", "-t2", "-c50", f"-d{secs}s", f"http://127.0.0.1:{port}/"],
                                         capture_output=True, text=True, timeout=secs + 30).stdout
                    rps = next(float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec:"))
                    e = [l for l in out.splitlines() if "Socket errors" in l or "Non-2xx" in l]
                    if e:
                        errs[(srv, k)] += 1
                        log(f"cluster {srv} {k}: {' / '.join(x.strip() for x in e)}")
                    res[(srv, k)].append(rps)
                    log(f"cluster {srv} instances={k} round={r}: {rps:.0f} requests/s")
                finally:
                    t.stop()
    return res, errs


POLICY = r"""#!/bin/sh
# The accept queue of the shared listening socket: rx_queue of its LISTEN
# row (st 0A) in /proc/net/tcp. Two or more connections waiting: 2 instances.
q=$(awk -v port=":{hexport}" '$2 ~ port"$" && $4 == "0A" {{ split($5, a, ":"); print a[2]; exit }}' /proc/net/tcp)
if [ $((0x${{q:-0}})) -ge 2 ]; then echo 2; else echo 1; fi
"""


def measure_spike(sbin, probe, spikes, log):
    """A service of `probe --serve` behind one `listen` socket, instances
    1-2, autoscaled by a policy that reads the socket's accept queue. At a
    known instant wrk starts (-c50); the time until `sentinel status
    --json` shows two instances running. Between spikes the load stops and
    the service goes back to one instance."""
    res = []
    t = Sentinel(0)
    port = free_port()
    pol = f"{t.d}/policy"
    with open(pol, "w") as f:
        f.write(POLICY.format(hexport=f"{port:04X}"))
    os.chmod(pol, 0o755)
    t.extra = (f'[services.web]\ncommand = {json.dumps([probe, "--serve"])}\n'
               f'instances = "1-2"\nlisten = ["tcp:127.0.0.1:{port}"]\n'
               '[services.web.autoscale]\ninterval = "200ms"\nwindow = "200ms"\ncooldown = "1s"\n'
               f'policy = {{ exec = ["{pol}"], timeout = "150ms" }}\n')
    sock = f"{t.d}/s.sock"

    def running():
        p = subprocess.run([sbin, "status", "--json", "-s", sock], capture_output=True, text=True)
        try:
            return sum(1 for x in json.loads(p.stdout)["services"]
                       if x.get("service") == "web" and x["state"] == "running")
        except (ValueError, KeyError):
            return 0
    try:
        t.start()
        wait(lambda: running() == 1, limit=30)
        for r in range(spikes):
            time.sleep(1.5)  # past the cooldown of the last scale-down
            t0 = time.perf_counter()
            w = subprocess.Popen(["wrk", "-t1", "-c50", "-d4s", f"http://127.0.0.1:{port}/"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait(lambda: running() >= 2, limit=10)
                dt = (time.perf_counter() - t0) * 1000
                res.append(dt)
                log(f"spike {r}: second instance running after {dt:.0f} ms")
            except TimeoutError:
                log(f"spike {r}: no second instance within 10 s")
            w.wait()
            wait(lambda: running() == 1, limit=30)
    finally:
        t.stop()
    return res, POLICY.format(hexport="1F90")


def hyperfine_rounds(cmds, rounds, runs, log):
    """cmds: {name: command string}. hyperfine runs each command's runs in a
    block, so it is called `rounds` times and the per-run times are pooled."""
    res = {k: [] for k in cmds}
    for r in range(rounds):
        for k, c in cmds.items():
            out = tempfile.mktemp(suffix=".json")
            p = subprocess.run(["hyperfine", "-N", "--warmup", "5", "--runs", str(runs), "--export-json", out,
                                "-n", k, c], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if p.returncode == 0:
                times = json.load(open(out))["results"][0]["times"]
                res[k] += [x * 1000 for x in times]
                log(f"exec round={r} {k}: median {statistics.median(times) * 1000:.3f} ms")
            else:
                log(f"exec round={r} {k}: failed: {p.stderr.strip().splitlines()[-1:]}")
            if os.path.exists(out):
                os.remove(out)
    return res


def read_variants(path):
    """[(name, cargo flags, bytes)] from the run script's static builds."""
    out = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and parts[2].isdigit():
                    out.append((parts[0], parts[1], int(parts[2])))
    return out


def instructions(cmds, log):
    """Instructions each command executes in its own process (callgrind,
    children not followed): repeatable on a noisy machine, unlike time."""
    out = {}
    if not shutil.which("valgrind"):
        return out
    for k, c in cmds.items():
        p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *shlex.split(c)],
                           capture_output=True, text=True)
        for line in p.stderr.splitlines():
            if "Collected :" in line:
                out[k] = int(line.split(":")[-1].strip())
        log(f"instructions {k}: {out.get(k)}")
    return out


def sizes(sbin, static_bin=""):
    def sz(*names):
        tot, parts = 0, []
        for n in names:
            p = shutil.which(n) or n
            if not os.path.exists(p):
                return None, f"{n} missing"
            real = os.path.realpath(p)
            tot += os.path.getsize(real)
            parts.append(real)
        return tot, " + ".join(parts)
    out = {}
    # strip a copy so the figure does not depend on the profile
    tmp = tempfile.mktemp()
    subprocess.run(["strip", "-o", tmp, sbin], check=False)
    s = os.path.getsize(tmp) if os.path.exists(tmp) else os.path.getsize(sbin)
    if os.path.exists(tmp):
        os.remove(tmp)
    out["sentinel"] = (s, f"{sbin} (stripped)")
    if static_bin and os.path.exists(static_bin):
        out["sentinel (static)"] = (os.path.getsize(static_bin), f"{static_bin} (`scripts/build-static`)")
    out["tini"] = sz("tini")
    out["tini-static"] = sz("tini-static")
    out["dumb-init"] = sz("dumb-init")
    out["runit (runsvdir+runsv)"] = sz("runsvdir", "runsv")
    out["s6 (s6-svscan+s6-supervise)"] = sz("s6-svscan", "s6-supervise")
    try:
        kib = int(subprocess.run(["dpkg-query", "-W", "-f=${Installed-Size}", "supervisor"],
                                 capture_output=True, text=True).stdout)
        out["supervisord"] = (kib * 1024, "python package `supervisor` (dpkg Installed-Size; plus python3 itself)")
    except ValueError:
        out["supervisord"] = (None, "not installed")
    return out


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bin", default="target/release/sentinel")
    ap.add_argument("--out", default="docs/benchmarks.md")
    ap.add_argument("--pm2", default="auto", help="yes, no, or auto (use pm2 if on PATH)")
    ap.add_argument("--pm2-note", default="")
    ap.add_argument("--probe", default="target/release/sentinel-probe", help="tests/probe built in release")
    ap.add_argument("--static-bin", default="", help="sentinel built by scripts/build-static")
    ap.add_argument("--sizes", default="", help="NAME<TAB>FLAGS<TAB>BYTES lines of static builds")
    a = ap.parse_args()
    q = a.quick
    Sentinel.bin = os.path.abspath(a.bin)
    with_pm2 = a.pm2 == "yes" or (a.pm2 == "auto" and shutil.which("pm2"))
    cls_list = tools(with_pm2)
    P = {
        "mem_sizes": [1, 100] if q else [1, 100, 500],
        "mem_reps": 2 if q else 3,
        "idle_secs": 10 if q else 30,
        "idle_reps": 1 if q else 2,
        "kills": 10 if q else 20,
        "reap": [[2000, 3]] if q else [[2000, 7], [20000, 3]],  # [orphans, rounds]
        "exec_rounds": 3 if q else 5,
        "exec_runs": 30 if q else 100,
        "scrape_services": 500,
        "scrape_rounds": 8 if q else 20,
        "cluster_secs": 5 if q else 10,
        "cluster_rounds": 2 if q else 3,
        "spikes": 3 if q else 8,
    }
    t_start = time.monotonic()

    def log(msg):
        print(f"[{time.monotonic() - t_start:6.1f}s] {msg}", flush=True)

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    R = {}
    global STAMP
    stamp_dir = tempfile.mkdtemp(prefix="bench-stamp-")
    STAMP, R["stamp_kind"] = build_stamp(stamp_dir)
    probe = os.path.abspath(a.probe)
    try:
        log(f"tools: {', '.join(c.name for c in cls_list)}; parameters: {P}")
        R["mem"] = measure_memory(cls_list, P["mem_sizes"], P["mem_reps"], log)
        R["idle"] = measure_idle(cls_list, 100, P["idle_secs"], P["idle_reps"], log)
        R["restart"] = measure_restart(cls_list, P["kills"], log)
        R["crash"] = measure_crash(cls_list, 10, log)
        R["scrape"] = measure_scrape(P["scrape_services"], P["scrape_rounds"], log)
        R["cluster"] = measure_cluster(Sentinel.bin, probe, [1, 4], P["cluster_secs"], P["cluster_rounds"], log)
        R["spike"] = measure_spike(Sentinel.bin, probe, P["spikes"], log)
        R["reap"] = {n: measure_reap(Sentinel.bin, n, reps, log) for n, reps in P["reap"]}
        s = Sentinel.bin
        plain = {"sentinel": f"{s} exec -- /bin/true"}
        if a.static_bin:
            plain["sentinel (static)"] = f"{os.path.abspath(a.static_bin)} exec -- /bin/true"
        plain["tini"] = "tini -- /bin/true"
        if shutil.which("tini-static"):
            plain["tini-static"] = "tini-static -- /bin/true"
        plain["dumb-init"] = "dumb-init /bin/true"
        R["exec"] = hyperfine_rounds(plain, P["exec_rounds"], P["exec_runs"], log)
        R["exec_cmds"] = plain
        R["exec_instr"] = instructions(plain, log)
        iso = {
            "sentinel": f"{s} exec --unshare pid,net,mount,ipc,uts --seccomp default --cap-keep none -- /bin/true",
            "bwrap": "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev /bin/true",
            "firejail": "firejail --quiet --noprofile --net=none /bin/true",
            "unshare": "unshare --pid --net --mount --ipc --uts --fork /bin/true",
        }
        R["iso"] = hyperfine_rounds(iso, P["exec_rounds"], P["exec_runs"], log)
        R["iso_cmds"] = iso
        R["size"] = sizes(a.bin, a.static_bin)
        R["host_procs"] = sum(1 for e in os.listdir("/proc") if e.isdigit())
        R["variants"] = read_variants(a.sizes)
    finally:
        for t in list(LIVE):
            t.stop()
        shutil.rmtree(stamp_dir, ignore_errors=True)
    write_report(a, P, cls_list, R, time.monotonic() - t_start)
    log(f"wrote {a.out}")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"- CPUs: {os.cpu_count()} (`nproc`: {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), "
            f"{model}\n- kernel: {platform.release()}\n"
            f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- load average at the end of the run: {open('/proc/loadavg').read().split()[0:3]} "
            "(the machine is shared: other work on its 2 cores shows up as noise, most in the "
            "sub-millisecond figures)\n")


def git_rev():
    p = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True)
    return f"`{p.stdout.strip()}`" if p.returncode == 0 else "(not a git checkout)"


def pkgver(pkg):
    p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return p.stdout.strip() or "?"


def write_report(a, P, cls_list, R, elapsed):
    L = []
    w = L.append
    w("# Benchmarks: sentinel and its peers\n")
    w("Generated by `scripts/bench/run" + (" --quick" if a.quick else "") + "` "
      f"(took {elapsed:.0f} s). A benchmark, not a test: nothing here fails on a figure. "
      "Every measurement runs sentinel and the peers interleaved in the same run "
      "(A B C A B C ...), repeated; tables give the median, min – max and the ratio of "
      "each tool's median to sentinel's (below 1 means the peer is better).\n")
    w("## Machine\n")
    w(machine())
    w("Versions: " + ", ".join([
        f"sentinel {git_rev()}",
        f"tini {pkgver('tini')}", f"dumb-init {pkgver('dumb-init')}", f"supervisor {pkgver('supervisor')}",
        f"runit {pkgver('runit')}", f"s6 {pkgver('s6')}", f"bubblewrap {pkgver('bubblewrap')}",
        f"firejail {pkgver('firejail')}", f"hyperfine {pkgver('hyperfine')}"]) + ".\n")
    if a.pm2_note:
        w(f"pm2: {a.pm2_note}\n")
    w(f"Parameters: `{json.dumps(P)}`\n")
    w("## Configurations\n")
    w("Each tool supervises N services `sleep 100000`, configs generated in a temp dir:\n")
    for c in cls_list:
        w(f"- **{c.name}**: {c.how}")
    w("")
    w("The supervisor's own processes are its process tree minus the services "
      "(`comm` = `sleep`): sentinel alone; supervisord alone; runsvdir + every runsv; "
      "s6-svscan + every s6-supervise" + ("; the pm2 God daemon" if any(c.name == "pm2" for c in cls_list) else "") + ".\n")

    def hint(better, what):
        if better:
            w(f"*What stands in the way:* {what}\n")

    # memory
    w("## 1. Supervisor memory\n")
    w("RSS and PSS from `/proc/PID/smaps_rollup`, summed over the supervisor's own processes, "
      "services excluded; read 1 s after all N services run. Each tool is started, measured and "
      f"killed in turn, {P['mem_reps']} rounds.\n")
    for n, per in R["mem"].items():
        for k in ("Rss", "Pss"):
            w(f"### {k.upper()} with {n} service(s), KiB\n")
            rows, better = table({t: v[k] for t, v in per.items()}, "")
            L.extend(rows)
            w("")
            split = per.get("sentinel", {}).get("split")
            if k == "Rss" and split:
                w("sentinel's RSS by mapping (first round, KiB): " +
                  ", ".join(f"{name} {kb:,}" for name, kb in split.items()) + ".\n")
            hint(better, f"{', '.join(better)} {'is' if len(better) == 1 else 'are'} smaller here: "
                 "sentinel is one process mapping a 2.3 MB binary (nearly all of it resident: the kernel "
                 "maps the file's cached pages 64 KiB around each fault) and glibc, plus its heap, while "
                 "runsv and s6-supervise are C programs of ~30 KB each that share their pages; their cost "
                 "grows with one process per service, sentinel's by about 10 KiB of heap per service.")
    w("## 1b. Cold start\n")
    w("From launching the supervisor (for pm2: `pm2 start eco.json`, daemon included) until all N "
      "services run (N `sleep` processes in its tree, polled every 5 ms), from the same runs as the "
      "memory figures. Milliseconds.\n")
    for n, per in R["mem"].items():
        w(f"### Cold start with {n} service(s)\n")
        rows, better = table({t: v["start"] for t, v in per.items()}, " ms")
        L.extend(rows)
        w("")
        hint(better, f"{', '.join(better)} faster than sentinel.")
    # idle
    w(f"## 2. Idle cost with 100 services over {P['idle_secs']} s\n")
    w("All tools run at the same time, each with its 100 services, and are measured over the same "
      f"{P['idle_secs']} s window (after a 2 s settle), {P['idle_reps']} round(s): CPU ticks "
      "(utime+stime of /proc/PID/stat, 1 tick = 10 ms) and context switches (voluntary + "
      "nonvoluntary of every thread's /proc/PID/task/TID/status) summed over the supervisor's processes.\n")
    for k, title in (("ticks", "CPU ticks"), ("ctx", "Context switches")):
        w(f"### {title}\n")
        rows, better = table({t: v[k] for t, v in R["idle"].items()}, "")
        L.extend(rows)
        w("")
        hint(better, f"{', '.join(better)} below sentinel; sentinel should sleep in epoll_wait with no timeout.")
    # restart
    w("## 3. Restart latency\n")
    w("Each tool supervises one victim at its fastest allowed setting: a small C program (compiled "
      f"{R['stamp_kind']} by the bench with `cc -O2`) that appends its `CLOCK_MONOTONIC` time to a file "
      "first thing after exec, then waits. All tools run at once; "
      f"{P['kills']} rounds, in each round every tool's victim is SIGKILLed in turn. The latency is the "
      "replacement's stamp minus the monotonic time taken just before `kill(2)`; the bench polls the "
      "file for the new line, but the poll is not on the measured path. 1.2 s between rounds, because "
      "runsv delays the respawn of a service that ran less than a second. Milliseconds.\n")
    w("Settings (each tool's fastest):\n")
    w("- **sentinel**: `backoff = { initial = \"0s\" }` (restart at once);")
    w("- **supervisord**: `autorestart=true`, `startsecs=0`; it has no delay setting to lower;")
    w("- **runit**: none needed: runsv respawns at once a service that ran at least 1 s;")
    w("- **s6**: none exists: s6-supervise waits 1 s after a death before respawning;")
    if any(c.name == "pm2" for c in cls_list):
        w("- **pm2**: `autorestart: true`, `restart_delay: 0`.")
    w("")
    rows, better = table(R["restart"], " ms")
    L.extend(rows)
    w("")
    w("supervisord's main loop polls with a 1 s timeout (Python resumes the poll after the SIGCHLD "
      "handler), so it notices the death and respawns at the next tick; s6-supervise, once `./run` died, schedules the respawn one second later "
      "(`set_down_and_ready` in s6-supervise.c), with no setting to shorten it. Both are at their fastest "
      "allowed setting here.\n")
    w("On this host sentinel runs services without cgroups (cgroup v2 has no controllers here), and then, "
      "before it respawns a service, it kills what is left of the dead service's session by reading "
      f"every `/proc/PID/stat` ({R.get('host_procs', '?')} processes on the host at the end of the run). "
      "That scan is on the restart path: with it skipped (a test build), the fastest restart here went "
      "from 1.9–2.2 ms to 0.76–0.79 ms, about 12 µs per process on the host.\n")
    hint(better, f"{', '.join(better)} faster than sentinel.")
    w("## 3b. Crash loop\n")
    w("All tools at once, each supervising one service `sh -c 'echo x >> FILE; exit 1'` at its "
      "**default** restart settings (supervisord: `startsecs=0`, `autorestart=true`, since with its "
      "default `startsecs=1` it gives up after 3 tries): starts counted over 10 s (after 1 s), and the "
      "CPU ticks of the supervisor's processes in the same window. Fewer starts means more "
      "back-off; neither is better as such, the CPU column is the cost. pm2 at 0 has given up on the "
      "service within the first second (`max_restarts` = 16 restarts shorter than `min_uptime`).\n")
    for k, title in (("starts", "Starts in 10 s"), ("ticks", "Supervisor CPU ticks in 10 s")):
        w(f"### {title}\n")
        rows, _ = table({t: v[k] for t, v in R["crash"].items()}, "")
        L.extend(rows)
        w("")
    # reaping
    w("## 4. PID 1 reaping\n")
    w("Wall time (python timer) of the whole run as PID 1 of a new pid namespace; the shell spawns "
      "N double-forked `sleep 0.01` (each orphaned to PID 1 at once) then waits until "
      "`pgrep -x sleep` (which sees zombies too) finds none; rounds interleaved. Commands (N = "
      f"{P['reap'][0][0]}):\n")
    w("```")
    for k, argv in next(iter(R["reap"].values()))[1].items():
        w(shlex.join(argv))
    w("```\n")
    for n, reps in P["reap"]:
        w(f"### {n} orphans, {reps} rounds\n")
        rows, better = table(R["reap"][n][0], " ms")
        L.extend(rows)
        w("")
        hint(better, f"{', '.join(better)} faster; the run is dominated by the shell's {n} forks, "
             "so differences of a few % are noise on this shared machine.")
    # exec
    w("## 5. Plain exec\n")
    w(f"`hyperfine -N --warmup 5 --runs {P['exec_runs']}` per command, called {P['exec_rounds']} times "
      "alternating the commands; all run times pooled. Milliseconds. sentinel is run both as built by "
      "`cargo build --release` (dynamically linked to glibc) and as built by `scripts/build-static`; "
      "Debian ships tini both ways too.\n")
    w("```")
    for c in R["exec_cmds"].values():
        w(c)
    w("```\n")
    rows, better = table(R["exec"], " ms")
    L.extend(rows)
    w("")
    meds = {k: statistics.median(v) for k, v in R["exec"].items() if v}
    pairs = [("sentinel", "tini", "dynamic against dynamic"),
             ("sentinel (static)", "tini-static", "static against static"),
             ("sentinel (static)", "tini", "sentinel's static build against Debian's default tini")]
    said = [f"{why}: {meds[x] / meds[y]:.2f}× tini's time" for x, y, why in pairs if x in meds and y in meds]
    if said:
        w("Pairs: " + "; ".join(said) + ".\n")
    if R.get("exec_instr"):
        w("Instructions executed by each command's own process (`valgrind --tool=callgrind`, children not "
          "followed; repeatable where times are not):\n")
        w("| command | instructions | ratio to sentinel |")
        w("|---|---:|---:|")
        base = R["exec_instr"].get("sentinel")
        for k, n in R["exec_instr"].items():
            w(f"| {k} | {n:,} | {n / base:.2f} |" if base else f"| {k} | {n:,} | – |")
        w("")
    hint(better, f"{', '.join(better)} faster. Profiled with callgrind: in the dynamically linked "
         "build about 60 % of sentinel's instructions are the dynamic loader relocating a 2.3 MB Rust "
         "binary and binding its glibc symbols (Rust links with `-z now`), and 20 % are Rust's runtime "
         "start-up (`pthread_getattr_np` parsing `/proc/self/maps` for the main thread's stack guard); "
         "sentinel's own work (flags, signal mask and signalfd, subreaper, the plan, the wait) is "
         "under 20 %. The static build has no loader work, which is why it is the one to compare; the "
         "remaining gap to tini-static is the runtime start-up and mapping a binary 4× larger.")
    w("### Isolated exec (pid, net, mount, ipc, uts namespaces)\n")
    w("Same method. Commands:\n")
    w("```")
    for k, c in R["iso_cmds"].items():
        w(c)
    w("```\n")
    rows, better = table(R["iso"], " ms")
    L.extend(rows)
    w("")
    hint(better, f"{', '.join(better)} faster ({'unshare does no seccomp or capability work; ' if 'unshare' in better else ''}"
         "sentinel also installs a seccomp filter and drops capabilities).")
    # size
    w("## 6. Binary size\n")
    w("| tool | bytes | ratio to sentinel | what |")
    w("|---|---:|---:|---|")
    base = R["size"]["sentinel"][0]
    for k, (b, what) in R["size"].items():
        if b is None:
            w(f"| {k} | – | – | {what} |")
        else:
            w(f"| {k} | {b:,} | {b / base:.2f} | {what} |")
    w("")
    w("*What stands in the way:* sentinel is one binary for PID 1, supervisor, isolation runner, "
      "config parser (TOML and YAML), HTTP metrics and control CLI; tini and dumb-init only do the "
      "first, runit and s6 split the work over several small C programs.\n")
    if R.get("variants"):
        w("### The smallest build: optional cargo features\n")
        w("`scripts/build-static` with the default features left out one by one (stripped, static; "
          "`yaml`: YAML config files through granit-parser, `dashboard`: the web page at `GET /` of "
          "`[http] listen`; `/metrics` and the JSON API stay in every build):\n")
        w("| build | cargo flags | bytes | saved |")
        w("|---|---|---:|---:|")
        base = R["variants"][0][2]
        for name, flags, n in R["variants"]:
            w(f"| {name} | `{flags}` | {n:,} | {base - n:,} |" if flags else f"| {name} | (none) | {n:,} | – |")
        w("")
    # scrape
    sres, ssize = R["scrape"]
    w(f"## 7. `/metrics` with {P['scrape_services']} services\n")
    w(f"sentinel with {P['scrape_services']} `sleep` services and `[http] listen = \"127.0.0.1:PORT\"`; "
      "wall time of one `GET /metrics` on a new loopback connection (python `http.client`, request "
      "sent to body read). sentinel caches the rendered text for 1 s, so each round asks twice: "
      "*fresh* (the cache expired: every service sampled from `/proc` and rendered, what a "
      "Prometheus scraping every 15 s sees) and *cached* (at once after). "
      f"{P['scrape_rounds']} rounds, 1.1 s apart. Response: {ssize.get('sentinel', 0):,} bytes.\n")
    w("No peer exports Prometheus metrics by itself (runit and s6 have no HTTP side at all; pm2 "
      "needs the separate `pm2-prometheus-exporter` module). The nearest equivalent is supervisord's "
      "XML-RPC call `supervisor.getAllProcessInfo` on its `[inet_http_server]` (state, pid, times "
      f"of every program, no resource figures; {ssize.get('supervisord', 0):,} bytes), asked in the "
      "same rounds against the same number of programs. Milliseconds.\n")
    rows, better = table(sres, " ms", base="sentinel (fresh)")
    L.extend(rows)
    w("")
    # scaling
    cres, cerr = R["cluster"]
    w("## 8. Scaling (issue 8): shared-port cluster and autoscaling\n")
    w("sentinel only (no peer scales a service of any language behind one port). Two servers, each "
      "taking one connection at a time on the socket sentinel passes as fd 3 (`LISTEN_FDS`) and "
      "answering with `Connection: close`, so each request is a new connection: `tests/probe --serve` "
      "(built in release; answers at once, CPU only) and a 9-line python server that waits 2 ms per "
      "request (a handler waiting on I/O, as a blocking app server does). Config:\n")
    w("```toml\n[services.web]\ncommand = [\"sentinel-probe\", \"--serve\"]   # or [\"python3\", \"-c\", SERVER]\n"
      "instances = 4   # or 1\nlisten = [\"tcp:127.0.0.1:PORT\"]\n```\n")
    w("### Connections per second, 1 instance against 4\n")
    w(f"`wrk -t2 -c50 -d{P['cluster_secs']}s http://127.0.0.1:PORT/`, {P['cluster_rounds']} rounds, "
      "interleaved (1, 4, 1, 4, ...). wrk runs on the same 2 cores as the servers.\n")
    w("| server | instances | median requests/s | min – max | ratio to 1 instance |")
    w("|---|---:|---:|---:|---:|")
    for srv in dict.fromkeys(x[0] for x in cres):
        one = statistics.median(cres[(srv, 1)]) if cres.get((srv, 1)) else None
        for (s2, k), v in cres.items():
            if s2 != srv or not v:
                continue
            m, lo, hi = summary(v)
            w(f"| {srv} | {k} | {m:,.0f} | {lo:,.0f} – {hi:,.0f} | {m / one:.2f} |" if one else
              f"| {srv} | {k} | {m:,.0f} | {lo:,.0f} – {hi:,.0f} | – |")
    w("")
    w("Rounds with socket errors or non-2xx answers: " +
      ", ".join(f"{srv} ×{k}: {v}" for (srv, k), v in cerr.items()) + ". "
      "With the CPU-only server, 4 instances cannot do better than 1 here: wrk and the kernel's "
      "connection handling already take both cores. With a handler that waits, the kernel spreads "
      "the connections over the 4 instances and they wait in parallel.\n")
    spikes, policy = R["spike"]
    w("### From a load spike to the new instance running\n")
    w("The same service with `instances = \"1-2\"` and an autoscale policy evaluated every 200 ms:\n")
    w("```toml\n[services.web.autoscale]\ninterval = \"200ms\"\nwindow = \"200ms\"\ncooldown = \"1s\"\n"
      "policy = { exec = [\"policy\"], timeout = \"150ms\" }\n```\n")
    w("This host's cgroup v2 has no controllers, so a `cpu` rule sees no CPU figure here (sentinel "
      "reads CPU only from the service's cgroup). The policy therefore reads a load signal that "
      "needs no cgroup: the accept queue of the shared listening socket, from `/proc/net/tcp` (shown "
      "for port 8080, `1F90` in hex):\n")
    w("```sh\n" + policy.strip() + "\n```\n")
    w(f"{P['spikes']} spikes: at a known instant `wrk -t1 -c50 -d4s` starts; the time until "
      "`sentinel status --json` (polled every 5 ms) shows the second instance `running`. Then the "
      "load stops and the service goes back to one instance. The time is the wait for the next "
      "evaluation (0–200 ms), the policy's run, and the spawn.\n")
    rows, _ = table({"sentinel": spikes}, " ms")
    L.extend(rows)
    w("")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    text = "\n".join(L) + "\n"
    text = text.replace(os.getcwd() + "/", "")  # commands as a reader types them, from the repo root
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        for t in list(LIVE):
            t.stop()
        sys.exit(130)
