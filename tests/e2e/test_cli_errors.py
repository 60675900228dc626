"""Bad user input: one clear line naming the problem, exit 2, nothing started
and nothing left behind."""
import os
import shutil
import subprocess
import tempfile

from harness import CAUSEWAY, INITRD, KERNEL, check


def run_vm(args, tmpdir):
    env = dict(os.environ, TMPDIR=tmpdir)
    return subprocess.run([CAUSEWAY, "vm"] + args, capture_output=True, text=True, timeout=30,
                          env=env, stdin=subprocess.DEVNULL)


def good(**over):
    a = {"--kernel": KERNEL, "--initrd": INITRD, "--net": "link=/tmp/cw-never.sock"}
    a.update(over)
    out = []
    for k, v in a.items():
        if v is not None:
            out += [k, v]
    return out


CASES = [
    ("missing kernel", good(**{"--kernel": "/nonexistent/bzImage"}), "--kernel '/nonexistent/bzImage'"),
    ("kernel is a directory", good(**{"--kernel": "/tmp"}), "not a regular file"),
    ("no initrd", good(**{"--initrd": None}), "--initrd FILE is required"),
    ("unreadable initrd", good(**{"--initrd": "/nonexistent/initrd"}), "--initrd '/nonexistent/initrd'"),
    ("no qemu", good(**{"--qemu": "/nonexistent/qemu"}), "QEMU '/nonexistent/qemu' not found"),
    ("bad mem", good(**{"--mem": "lots"}), "--mem: 'lots'"),
    ("tiny mem", good(**{"--mem": "1M"}), "--mem: '1M'"),
    ("huge mem", good(**{"--mem": "100000G"}), "--mem: "),
    ("bad cpus", good(**{"--cpus": "0"}), "--cpus: '0'"),
    ("bad accel", good(**{"--accel": "xen"}), "--accel: 'xen'"),
    ("bad gmem", good(**{"--gmem": "lazy"}), "--gmem: 'lazy'"),
    ("bad mac", good(**{"--net": "link=/tmp/x.sock,mac=01:00:5e:00:00:01"}), "mac '01:00:5e:00:00:01'"),
    ("malformed mac", good(**{"--net": "link=/tmp/x.sock,mac=52:54:00:zz:00:01"}), "mac '52:54:00:zz:00:01'"),
    ("bad mtu", good(**{"--net": "link=/tmp/x.sock,mtu=70000"}), "mtu '70000'"),
    ("bad queue size", good(**{"--net": "link=/tmp/x.sock,queue-size=300"}), "queue-size '300'"),
    ("bad busy poll", good(**{"--net": "link=/tmp/x.sock,busy-poll=soon"}), "busy-poll 'soon'"),
    ("unknown net key", good(**{"--net": "link=/tmp/x.sock,colour=red"}), "unknown key 'colour'"),
    ("net without link", good(**{"--net": "mac=52:54:00:00:00:01"}), "link=PATH is required"),
    ("unknown flag", good() + ["--turbo"], "unknown or incomplete option '--turbo'"),
    ("stray argument", good() + ["extra"], "unexpected argument 'extra'"),
]


def test_vm_rejects_bad_input(env):
    for what, args, expect in CASES:
        tmp = tempfile.mkdtemp(prefix="cw-cli-")
        try:
            r = run_vm(args, tmp)
            err = r.stderr.strip()
            check(r.returncode == 2, "%s: exit %d, want 2 (stderr %r)" % (what, r.returncode, err))
            check(len(err.splitlines()) == 1, "%s: want one line, got %r" % (what, err))
            check(expect in err, "%s: %r does not mention %r" % (what, err, expect))
            check(not os.listdir(tmp), "%s: left files behind: %r" % (what, os.listdir(tmp)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_device_rejects_bad_input(env):
    cases = [
        (["--link", "/tmp/x"], "--socket PATH is required"),
        (["--socket", "/tmp/x", "--gmem", "eager"], "--gmem: 'eager'"),
        (["--socket", "/tmp/x", "--mtu", "20"], "--mtu: '20'"),
        (["--socket", "/tmp/x", "--ring-size", "3M"], "--ring-size: '3M'"),
        (["--socket", "/tmp/x", "--event-fd", "999"], "--event-fd: '999'"),
        (["--socket", "/tmp/x", "--bogus"], "unknown or incomplete option '--bogus'"),
        (["--socket", "/tmp/x", "--sched", "fifo"], "--sched 'fifo': expected batch or normal"),
        (["--socket", "/tmp/x", "--busy-poll", "2000000"], "--busy-poll: '2000000'"),
        (["--socket", "/tmp/x", "--busy-poll", "-5"], "--busy-poll: '-5'"),
    ]
    for args, expect in cases:
        r = subprocess.run([CAUSEWAY, "device"] + args, capture_output=True, text=True, timeout=10)
        err = r.stderr.strip()
        check(r.returncode == 2 and expect in err and len(err.splitlines()) == 1,
              "device %r: exit %d, stderr %r" % (args, r.returncode, err))
    r = subprocess.run([CAUSEWAY, "switch", "--busy-poll", "soon"], capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 2 and "--busy-poll: 'soon'" in r.stderr and
          len(r.stderr.strip().splitlines()) == 1, "switch --busy-poll soon: exit %d, stderr %r"
          % (r.returncode, r.stderr))
    r = subprocess.run([CAUSEWAY, "frobnicate"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, "unknown command accepted")
