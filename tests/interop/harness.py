"""Infrastructure of the MACsec interop harness (Python 3 stdlib only).

- Netns: a private network namespace with a unique name, deleted on cleanup.
- Vm: one QEMU guest (Debian's kernel + our initramfs) on a tap, console read live.
- Capture: tcpdump on an interface inside a namespace.
- Endpoint / Scenario: the parameters of one MACsec station and of one test.
- HostPeer: the MACsec peer on the host side of the guest's tap, with two implementations:
    VmPeer        a second guest VM (kernel <-> kernel; validates the harness itself)
    ForwarderPeer our `macsec forward --config FILE` process (plugged in once it exists)
- forwarder_config(): the TOML config for `macsec forward`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import macsec_wire  # noqa: E402

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1bc|\r")

_live_namespaces: list["Netns"] = []
_live_procs: list[subprocess.Popen] = []


def log(msg: str) -> None:
    print(f"[interop {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd: list[str], check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, timeout=timeout, text=True,
                          stdout=kw.pop("stdout", subprocess.PIPE),
                          stderr=kw.pop("stderr", subprocess.STDOUT), **kw)


def kill_tree(p: subprocess.Popen, grace: float = 3.0) -> None:
    """Stop a process started with start_new_session=True, and its group."""
    if p.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def start_proc(cmd: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    _live_procs.append(p)
    return p


def cleanup_all() -> None:
    """Last-resort cleanup (atexit / signals): every process and namespace we created."""
    for p in list(_live_procs):
        try:
            kill_tree(p, grace=1.0)
        except Exception:
            pass
    _live_procs.clear()
    for ns in list(_live_namespaces):
        ns.delete()


# --------------------------------------------------------------------------- namespaces

_ns_counter = itertools.count(1)
NS_PREFIX = "itx-"


class Netns:
    """A network namespace named itx-<pid>-<n>: unique per run of run.py."""

    def __init__(self, tag: str = "") -> None:
        self.name = f"{NS_PREFIX}{os.getpid()}-{next(_ns_counter)}{tag}"
        self.created = False

    def create(self) -> "Netns":
        sh(["ip", "netns", "add", self.name])
        self.created = True
        _live_namespaces.append(self)
        # no IPv6 on the host side of the test links: keeps untagged chatter off the wire
        self.exec_sh("echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; "
                     "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6")
        self.ip("link", "set", "lo", "up")
        return self

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def ip(self, *args: str) -> str:
        return sh(["ip", "-n", self.name, *args]).stdout

    def tc(self, *args: str) -> str:
        return sh(["tc", "-n", self.name, *args]).stdout

    def exec_sh(self, script: str) -> str:
        return sh([*self.prefix(), "sh", "-c", script]).stdout

    def delete(self) -> None:
        if not self.created:
            return
        # processes still inside (they are ours: the namespace is) get stopped first
        r = sh(["ip", "netns", "pids", self.name], check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh(["ip", "netns", "del", self.name], check=False)
        self.created = False
        if self in _live_namespaces:
            _live_namespaces.remove(self)


def remove_stale_namespaces() -> None:
    """Delete itx-<pid>-* namespaces left by an earlier run.py whose process is gone."""
    r = sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(re.escape(NS_PREFIX) + r"(\d+)-\d+\w*", name)
        if not m or int(m.group(1)) == os.getpid():
            continue
        if os.path.exists(f"/proc/{m.group(1)}"):
            continue
        log(f"removing stale namespace {name}")
        ns = Netns()
        ns.name, ns.created = name, True
        ns.delete()


def make_tap(ns: Netns, name: str, mtu: int) -> None:
    ns.ip("tuntap", "add", "dev", name, "mode", "tap")
    ns.ip("link", "set", name, "mtu", str(mtu), "up")


# --------------------------------------------------------------------------- guests


@dataclass
class Image:
    folder: str

    @property
    def kernel(self) -> str:
        return os.path.join(self.folder, "vmlinuz")

    @property
    def initrd(self) -> str:
        return os.path.join(self.folder, "initramfs.cpio.gz")

    @property
    def manifest(self) -> dict:
        with open(os.path.join(self.folder, "manifest.json")) as f:
            return json.load(f)


class Vm:
    """One QEMU guest on a tap inside a namespace; its serial console is read live."""

    def __init__(self, label: str, image: Image, ns: Netns, tap: str, mac: str, params: dict,
                 log_path: str, timeout_s: int, accel: str = "tcg", memory: int = 256) -> None:
        self.label = label
        self.image = image
        self.ns = ns
        self.tap = tap
        self.mac = mac
        self.params = params
        self.log_path = log_path
        self.timeout_s = timeout_s
        self.accel = accel
        self.memory = memory
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.proc: subprocess.Popen | None = None
        self.t_start = 0.0
        self.eof = False

    def cmdline(self) -> str:
        words = ["console=ttyS0", "quiet", "panic=-1", "oops=panic", "random.trust_cpu=on"]
        for k, v in self.params.items():
            v = str(v)
            if not v or any(c.isspace() for c in v):
                raise ValueError(f"bad guest parameter {k}={v!r}")
            words.append(f"macsec.{k}={v}")
        line = " ".join(words)
        if len(line) > 2000:
            raise ValueError(f"kernel command line too long ({len(line)} > 2000)")
        return line

    def qemu_argv(self) -> list[str]:
        cpu = ["-accel", "tcg", "-cpu", "max"] if self.accel == "tcg" else \
              ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
        return [
            "qemu-system-x86_64", *cpu, "-m", str(self.memory), "-smp", "1",
            "-nographic", "-nodefaults", "-serial", "stdio", "-no-reboot",
            "-kernel", self.image.kernel, "-initrd", self.image.initrd,
            "-append", self.cmdline(),
            "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={self.mac},romfile=",
        ]

    def start(self) -> None:
        argv = [*self.ns.prefix(), "timeout", "-k", "5", str(self.timeout_s), *self.qemu_argv()]
        with open(self.log_path, "w") as f:
            f.write("# " + " ".join(shlex.quote(a) for a in argv) + "\n")
        self.t_start = time.monotonic()
        self.proc = start_proc(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        threading.Thread(target=self._reader, name=f"console-{self.label}", daemon=True).start()

    def _reader(self) -> None:
        assert self.proc and self.proc.stdout
        with open(self.log_path, "a", errors="replace") as logf:
            for raw in iter(self.proc.stdout.readline, b""):
                line = ANSI.sub(b"", raw).decode("utf-8", "replace").rstrip("\n")
                t = time.monotonic() - self.t_start
                logf.write(f"{t:7.2f} {line}\n")
                logf.flush()
                with self.cond:
                    self.lines.append((t, line))
                    self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def send_line(self, text: str) -> None:
        if self.proc and self.proc.stdin and self.proc.poll() is None:
            try:
                self.proc.stdin.write(text.encode() + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def mark(self) -> int:
        """Index of the next console line: scenario-relative searches start there."""
        with self.cond:
            return len(self.lines)

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def wait_for(self, pattern: str, deadline: float, abort: str = r"^MACSEC-RESULT ",
                 start: int = 0) -> re.Match | None:
        """First console line from index start matching pattern, or None once the deadline
        passes, the guest exits, or a line matching abort appears first."""
        rx, ab = re.compile(pattern), re.compile(abort) if abort else None
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i][1]
                    i += 1
                    m = rx.search(line)
                    if m:
                        return m
                    if ab and ab.search(line):
                        return None
                if self.eof:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 1.0))

    def time_of(self, pattern: str, start: int = 0) -> float | None:
        rx = re.compile(pattern)
        with self.cond:
            for t, line in self.lines[start:]:
                if rx.search(line):
                    return t
        return None

    def wait_exit(self, deadline: float) -> int | None:
        if not self.proc:
            return None
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc:
            kill_tree(self.proc)
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)

    def _text(self, start: int) -> list[str]:
        with self.cond:
            return [line for _t, line in self.lines[start:]]

    def console(self, start: int = 0) -> str:
        with self.cond:
            return "\n".join(f"{t:7.2f} {line}" for t, line in self.lines[start:])

    def result(self, start: int = 0) -> dict:
        for line in reversed(self._text(start)):
            if line.startswith("MACSEC-RESULT "):
                return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
        return {}

    def counters_json(self, start: int = 0) -> list | None:
        text = self._text(start)
        try:
            a = text.index("=== COUNTERS JSON BEGIN ===")
            b = text.index("=== COUNTERS JSON END ===", a)
        except ValueError:
            return None
        try:
            return json.loads("".join(text[a + 1:b]))
        except json.JSONDecodeError:
            return None

    def counters_text(self, start: int = 0) -> str:
        text = self._text(start)
        try:
            a = text.index("=== COUNTERS BEGIN ===")
            b = text.index("=== COUNTERS END ===", a)
        except ValueError:
            return "(no counters printed)"
        return "\n".join(text[a + 1:b])

    def start_scenario(self, params: dict) -> int:
        """(session mode) Send one scenario; returns the mark its output starts at."""
        m = self.mark()
        words = []
        for k, v in params.items():
            v = str(v)
            if not v or any(c.isspace() for c in v):
                raise ValueError(f"bad guest parameter {k}={v!r}")
            words.append(f"{k}={v}")
        line = "scenario " + " ".join(words)
        if len(line) > 3500:
            raise ValueError("scenario line too long for the console")
        self.send_line(line)
        return m


def session_vm(label: str, image: "Image", ns: Netns, tap: str, mac: str, log_path: str,
               timeout_s: int, accel: str) -> Vm:
    """A guest that boots once and then runs scenarios sent on its console."""
    return Vm(label, image, ns, tap, mac, {"session": 1, "session_idle": 600}, log_path,
              timeout_s, accel=accel)


# --------------------------------------------------------------------------- counters


RX_SC_KEYS = ["InOctetsValidated", "InOctetsDecrypted", "InPktsUnchecked", "InPktsDelayed",
              "InPktsOK", "InPktsInvalid", "InPktsLate", "InPktsNotValid", "InPktsNotUsingSA",
              "InPktsUnusedSA"]
SECY_KEYS = ["OutPktsUntagged", "InPktsUntagged", "OutPktsTooLong", "InPktsNoTag", "InPktsBadTag",
             "InPktsUnknownSCI", "InPktsNoSCI", "InPktsOverrun"]
TX_SC_KEYS = ["OutPktsProtected", "OutPktsEncrypted", "OutOctetsProtected", "OutOctetsEncrypted"]
ALL_KEYS = SECY_KEYS + TX_SC_KEYS + RX_SC_KEYS


def normalize_kernel(j: list | None) -> dict:
    """Flat counters from `ip -j -s macsec show DEV`: SecY + TX SC + the sum over RX SCs, plus
    tx_pn / rx_pn (next PN of the TX SAs / RX SAs, max over SAs)."""
    if not j:
        return {}
    d = j[0]
    c = {k: int(d.get(k, 0)) for k in SECY_KEYS + TX_SC_KEYS}
    for k in RX_SC_KEYS:
        c[k] = sum(int(sc.get(k, 0)) for sc in d.get("rx_sc", []))
    c["tx_pn"] = max((int(sa.get("pn", 0)) for sa in d.get("sa_list", [])), default=0)
    c["rx_pn"] = max((int(sa.get("pn", 0)) for sc in d.get("rx_sc", []) for sa in sc.get("sa_list", [])),
                     default=0)
    return c


def normalize_forwarder(obj: dict | None) -> dict:
    """Flat counters from the JSON `macsec forward` prints on SIGUSR1 / at exit.

    Accepted shapes: counters as top-level keys (the preferred, flat form: SecY + TX SC + the
    sum over RX SCs), and/or nested objects "secy", "tx_sc" (object) and "rx_sc" (list of
    objects, summed). Optional "tx_pn"/"rx_pn" (next PN to send / lowest acceptable PN) at the
    top level or inside "tx_sa"/"rx_sa" lists as "next_pn"."""
    if not obj:
        return {}
    c: dict = {}

    def take(src: dict) -> None:
        for k in ALL_KEYS:
            if k in src and isinstance(src[k], int):
                c[k] = c.get(k, 0) + src[k]

    take(obj)
    for key in ("secy", "tx_sc"):
        if isinstance(obj.get(key), dict):
            take(obj[key])
    rx = obj.get("rx_sc")
    if isinstance(rx, dict):
        rx = [rx]
    for sc in rx or []:
        if isinstance(sc, dict):
            take(sc)
    for k in ALL_KEYS:
        c.setdefault(k, 0)
    for name, lst in (("tx_pn", "tx_sa"), ("rx_pn", "rx_sa")):
        v = obj.get(name)
        if v is None and isinstance(obj.get(lst), list):
            v = max((int(str(sa.get("next_pn", 0)), 0) for sa in obj[lst] if isinstance(sa, dict)),
                    default=0)
        c[name] = int(str(v), 0) if v is not None else 0
    return c


# --------------------------------------------------------------------------- scenario model

CIPHERS = ["gcm-aes-128", "gcm-aes-256", "gcm-aes-xpn-128", "gcm-aes-xpn-256"]


def _hexkey(seed: str, nbytes: int) -> str:
    out = b""
    i = 0
    while len(out) < nbytes:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return out[:nbytes].hex().upper()


@dataclass
class Endpoint:
    """One MACsec station: its transmit SC and SA (the other side receives with these)."""
    role: str
    mac: str
    ip: str
    port: int
    an: int
    key: str
    pn: int
    ssci: str
    salt: str

    @property
    def sci(self) -> str:
        return self.mac.replace(":", "").upper() + f"{self.port:04X}"


@dataclass
class Scenario:
    name: str
    cipher: str = "gcm-aes-128"
    encrypt: bool = True
    send_sci: bool = True
    replay: bool = True
    window: int = 0
    mtu: int = 1500
    size: int = 56
    count: int = 5
    df: bool = False
    guest_an: int = 0
    peer_an: int = 0
    start_pn: int = 1            # first PN in both directions (and the receivers' lowest PN)
    negative: str = ""           # "" | inject-to-guest | inject-to-peer | guest-sends-bad
    note: str = ""
    wrap: bool = False           # the XPN 32-bit wire PN must wrap during the test
    mka: bool = False            # SAs from MKA (wpa_supplicant in the guest), not static keys
    extra: dict = field(default_factory=dict)

    @property
    def xpn(self) -> bool:
        return "xpn" in self.cipher

    @property
    def keylen(self) -> int:
        return 32 if self.cipher.endswith("256") else 16

    def endpoints(self) -> tuple[Endpoint, Endpoint]:
        g = Endpoint("guest", "52:54:00:12:34:01", "192.0.2.1", 1, self.guest_an,
                     _hexkey(f"{self.name}/guest", self.keylen), self.start_pn,
                     "00000001", _hexkey(f"{self.name}/guest-salt", 12))
        p = Endpoint("peer", "52:54:00:12:34:02", "192.0.2.2", 1, self.peer_an,
                     _hexkey(f"{self.name}/peer", self.keylen), self.start_pn,
                     "00000002", _hexkey(f"{self.name}/peer-salt", 12))
        return g, p


def guest_params(scn: Scenario, me: Endpoint, other: Endpoint, role: str, hold: int,
                 neg: str = "") -> dict:
    """The macsec.* kernel command-line parameters of a guest (see guest/init.sh)."""
    p = {
        "name": scn.name.replace(" ", "_"), "role": role,
        "cipher": scn.cipher, "encrypt": "on" if scn.encrypt else "off",
        "send_sci": "on" if scn.send_sci else "off",
        "validate": "strict", "replay": "on" if scn.replay else "off", "window": scn.window,
        "port": me.port, "peer_port": other.port, "peer_mac": other.mac,
        "an": me.an, "rxan": other.an,
        "txpn": me.pn, "rxpn": other.pn, "txkey": me.key, "rxkey": other.key,
        "mtu": scn.mtu, "ip": me.ip, "peer_ip": other.ip,
        "count": scn.count, "size": scn.size, "df": "on" if scn.df else "off",
        "interval": "0.2", "reach_timeout": 20, "hold": hold, "ctl": "stdin",
    }
    if scn.xpn:
        p.update(txssci=me.ssci, rxssci=other.ssci, txsalt=me.salt, rxsalt=other.salt)
    if scn.mka:
        for k in ("txkey", "rxkey", "txpn", "rxpn", "an", "rxan", "peer_mac"):
            p.pop(k, None)
        p.update(mka="on", mka_cak=_hexkey(f"{scn.name}/cak", 16),
                 mka_ckn=_hexkey(f"{scn.name}/ckn", 32),
                 mka_priority=16 if role == "guest" else 32)
    if neg:
        p["neg"] = neg
    return p


def forwarder_config(scn: Scenario, me: Endpoint, other: Endpoint, plain: str, secure: str) -> str:
    """TOML config of `macsec forward` for the host side (me) talking to the guest (other)."""

    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def pn(v: int) -> str:
        return str(v) if v < 2**53 else q(hex(v))

    def b(v: bool) -> str:
        return "true" if v else "false"

    lines = [
        f"# scenario {scn.name}", "[ports]", f"plain = {q(plain)}", f"secure = {q(secure)}", "",
        "[secy]", f"cipher = {q(scn.cipher)}", f"encrypt = {b(scn.encrypt)}",
        "confidentiality_offset = 0", f"send_sci = {b(scn.send_sci)}", "end_station = false",
        "scb = false", 'validate = "strict"', f"replay_protect = {b(scn.replay)}",
        f"replay_window = {scn.window}", "vlan_in_clear = 0", f"sci = {q(me.sci)}", "",
        "[secy.tx]", f"encoding_sa = {me.an}", "", "[[secy.tx.sa]]", f"an = {me.an}",
        f"key = {q(me.key)}", f"pn = {pn(me.pn)}",
    ]
    if scn.xpn:
        lines += [f"ssci = {q(me.ssci)}", f"salt = {q(me.salt)}"]
    lines += ["", "[[secy.rx]]", f"sci = {q(other.sci)}", "", "[[secy.rx.sa]]", f"an = {other.an}",
              f"key = {q(other.key)}", f"pn = {pn(other.pn)}"]
    if scn.xpn:
        lines += [f"ssci = {q(other.ssci)}", f"salt = {q(other.salt)}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- capture


class Capture:
    """tcpdump on one interface of a namespace, written to a pcap file."""

    def __init__(self, ns: Netns, iface: str, path: str) -> None:
        self.ns, self.iface, self.path = ns, iface, path
        self.proc: subprocess.Popen | None = None
        self.err_path = path + ".stderr"

    def start(self, timeout: float = 10.0) -> None:
        err = open(self.err_path, "w")
        self.proc = start_proc([*self.ns.prefix(), "timeout", "-k", "2", "600", "tcpdump", "-i",
                                self.iface, "-n", "-s", "0", "-U", "--immediate-mode", "-Z",
                                "root", "-w", self.path], stdout=subprocess.DEVNULL, stderr=err)
        err.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.err_path) as f:
                if "listening on" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"tcpdump on {self.iface} did not start: {open(self.err_path).read()}")

    def frames(self) -> list[bytes]:
        try:
            return macsec_wire.read_pcap(self.path)
        except (OSError, ValueError):
            return []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                kill_tree(self.proc)
        if self.proc in _live_procs:
            _live_procs.remove(self.proc)


def inject(ns: Netns, iface: str, frames: list[bytes], path: str) -> str:
    macsec_wire.write_pcap(path, frames)
    r = sh([*ns.prefix(), "python3", os.path.join(HERE, "inject.py"), iface, path], check=False)
    if r.returncode != 0:
        raise RuntimeError(f"inject.py failed: {r.stdout}")
    return r.stdout.strip()


# --------------------------------------------------------------------------- host peers

HOST_MTU = 9000  # host side of the test link (taps, bridge, veths): the largest guest MTU


class Session:
    """What a HostPeer gets for a session: the namespace, the guest's tap, where to log."""

    def __init__(self, ns: Netns, guest_tap: str, image: Image, log_dir: str, deadline: float,
                 accel: str) -> None:
        self.ns, self.guest_tap, self.image = ns, guest_tap, image
        self.log_dir, self.deadline, self.accel = log_dir, deadline, accel


class Run:
    """What a HostPeer gets for one scenario."""

    def __init__(self, sess: Session, scn: Scenario, guest: Endpoint, peer: Endpoint, log_dir: str,
                 deadline: float) -> None:
        self.sess, self.scn, self.guest, self.peer = sess, scn, guest, peer
        self.ns, self.guest_tap = sess.ns, sess.guest_tap
        self.log_dir, self.deadline = log_dir, deadline


class HostPeer:
    """The MACsec station on the host side of the guest's tap.

    Session (one guest boot, many scenarios), driven by run.py:
      start_session(sess)   build its part of the topology inside sess.ns, where the guest's tap
                            sess.guest_tap already exists (up, MTU HOST_MTU); boot/start what
                            lives across scenarios
      session_ready()       True once it can take scenarios
      healthy()             False if it cannot run another scenario (the session is restarted)
      end_session()         stop everything it started
    Per scenario:
      prepare(run)          configure/start for run.scn: it transmits with run.peer (SCI, AN, key,
                            PN, SSCI, salt) and receives from run.guest
      wait_ready()          True once it can pass traffic
      on_guest_ready()      the guest is configured and being told to start (it pings run.peer.ip
                            until reachable, then count times); start pinging run.guest.ip
      wait_tx_done()        True once its own pings are done
      ping_result()         (transmitted, received) of its own pings
      inject(frames)        put frames on the wire so that this peer receives them as if they
                            came from the guest
      release()             both sides are done sending
      finish()              wait until its counters are final
      counters()            flat counters (see normalize_kernel / normalize_forwarder)
      status()              (ok, detail)
      diagnostics()         text to print when the scenario fails
      end_scenario()        stop what was started for this scenario (also after failures)
    Attributes: label; pn64 (its counters report 64-bit next PNs, checked in XPN wrap tests);
    supports_mka (it can run the MKA scenarios: it negotiates SAs with the guest's
    wpa_supplicant itself; the forwarder cannot yet, so those scenarios are left out).
    """

    label = "?"
    pn64 = False
    supports_mka = False

    def start_session(self, sess: Session) -> None: pass
    def session_ready(self) -> bool: return True
    def healthy(self) -> bool: return True
    def end_session(self) -> None: pass
    def prepare(self, run: Run) -> None: raise NotImplementedError
    def wait_ready(self) -> bool: return True
    def on_guest_ready(self) -> None: pass
    def wait_tx_done(self) -> bool: raise NotImplementedError
    def ping_result(self) -> tuple[int, int]: raise NotImplementedError
    def inject(self, frames: list[bytes]) -> str: raise NotImplementedError
    def release(self) -> None: pass
    def finish(self) -> None: pass
    def counters(self) -> dict: raise NotImplementedError
    def status(self) -> tuple[bool, str]: return True, ""
    def diagnostics(self) -> str: return ""
    def end_scenario(self) -> None: pass


class VmPeer(HostPeer):
    """A second guest as the peer: two taps bridged (br0) inside the namespace. Kernel macsec
    on both sides proves the guest image, the parameters and the parsing."""

    label = "kernel-vm"
    pn64 = False  # iproute2 6.1 prints only the low 32 bits of an XPN SA's PN
    supports_mka = True  # wpa_supplicant in the peer VM

    def __init__(self) -> None:
        self.vm: Vm | None = None
        self.sess: Session | None = None
        self.run: Run | None = None
        self.m = 0

    def start_session(self, sess: Session) -> None:
        self.sess = sess
        ns = sess.ns
        # group_fwd_mask 8: forward 01:80:C2:00:00:03 (EAPOL, for MKA); no multicast snooping:
        # the bridge would send IGMP reports of its own onto the test link
        ns.ip("link", "add", "br0", "type", "bridge", "group_fwd_mask", "8", "mcast_snooping", "0")
        make_tap(ns, "tapp", HOST_MTU)
        for tap in (sess.guest_tap, "tapp"):
            ns.ip("link", "set", tap, "master", "br0")
        ns.ip("link", "set", "br0", "mtu", str(HOST_MTU), "up")
        self.vm = session_vm("peer", sess.image, ns, "tapp", "52:54:00:12:34:02",
                             os.path.join(sess.log_dir, "peer-console.log"),
                             int(sess.deadline - time.monotonic()) + 30, sess.accel)
        self.vm.start()

    def session_ready(self) -> bool:
        assert self.vm and self.sess
        return self.vm.wait_for(r"=== SESSION READY", self.sess.deadline) is not None

    def healthy(self) -> bool:
        return bool(self.vm and self.vm.alive())

    def end_session(self) -> None:
        if self.vm:
            self.vm.send_line("poweroff")
            self.vm.wait_exit(time.monotonic() + 5)
            self.vm.kill()

    def prepare(self, run: Run) -> None:
        assert self.vm
        self.run = run
        params = guest_params(run.scn, run.peer, run.guest, "peer",
                              hold=max(10, int(run.deadline - time.monotonic())),
                              neg=run.scn.extra.get("peer_neg", ""))
        self.m = self.vm.start_scenario(params)

    def _wait(self, pattern: str, abort: str = r"^MACSEC-RESULT ") -> bool:
        assert self.vm and self.run
        return self.vm.wait_for(pattern, self.run.deadline, abort=abort, start=self.m) is not None

    def wait_ready(self) -> bool:
        return self._wait(r"^=== MACSEC READY")

    def on_guest_ready(self) -> None:
        assert self.vm
        self.vm.send_line("go")

    def wait_tx_done(self) -> bool:
        return self._wait(r"^=== TX DONE")

    def ping_result(self) -> tuple[int, int]:
        assert self.vm
        r = self.vm.result(self.m)
        return int(r.get("pings_tx", 0)), int(r.get("pings_rx", 0))

    def inject(self, frames: list[bytes]) -> str:
        assert self.run
        return inject(self.run.ns, "tapp", frames, os.path.join(self.run.log_dir, "inject-to-peer.pcap"))

    def release(self) -> None:
        assert self.vm
        self.vm.send_line("go")  # ignored unless it still waits at its start gate (failures)
        self.vm.send_line("release")

    def finish(self) -> None:
        assert self.vm and self.run
        # after a failure the deadline may have passed: the peer reports within ~20 s
        self.vm.wait_for(r"^=== SCENARIO END", max(self.run.deadline, time.monotonic() + 30),
                         abort="", start=self.m)

    def counters(self) -> dict:
        assert self.vm
        return normalize_kernel(self.vm.counters_json(self.m))

    def status(self) -> tuple[bool, str]:
        assert self.vm
        r = self.vm.result(self.m)
        if r.get("status") != "ok":
            return False, f"peer VM: {r.get('reason', 'no result line')}"
        if "neg_ok" in r and r["neg_ok"] != "1":
            return False, "peer VM: its negative actions did not behave"
        return True, ""

    def diagnostics(self) -> str:
        assert self.vm
        return f"--- peer VM console (this scenario) ---\n{self.vm.console(self.m)}"

    def end_scenario(self) -> None:
        if self.vm and self.run:
            with open(os.path.join(self.run.log_dir, "peer-console.log"), "w") as f:
                f.write(self.vm.console(self.m) + "\n")


class ForwarderPeer(HostPeer):
    """Our `macsec forward --config FILE` on the host side.

    Topology, inside the session's namespace NS (the guest's tap `tapg` is there) plus one
    namespace NS-plain per scenario:
      secure port: `tapg` itself (the forwarder opens it by name; QEMU holds the tap's fd)
      plain port:  `veth-plain0` (NS) <-> `veth-plain1` (NS-plain), which holds the host-side
                   address (peer.ip) and the peer MAC (peer.mac, 52:54:00:12:34:02). The
                   forwarder bridges frames, so its protected frames carry that MAC as source,
                   and its SCI is that MAC || port 1: send_sci=off works towards Linux.
      injection towards the forwarder: veth `inj0` -> `inj1`, whose ingress tc redirects
                   (u32 match-all + mirred ingress redirect) into the ingress of `tapg`, so the
                   forwarder receives injected frames as if the guest had sent them.
    The forwarder runs as `ip netns exec NS timeout -k 5 T BIN forward --config FILE`, stdout
    read live; SIGUSR1 (to the forwarder itself, not to timeout) makes it print its counters as
    one JSON object, and it prints them again when it exits on SIGTERM.
    """

    label = "macsec-forward"
    pn64 = True

    def __init__(self, binary: str, extra_args: list[str] | None = None) -> None:
        self.binary = binary
        self.extra_args = extra_args or []
        self.sess: Session | None = None
        self.run: Run | None = None
        self.plain: Netns | None = None
        self.proc: subprocess.Popen | None = None
        self.out_lines: list[str] = []
        self.json_objs: list[dict] = []
        self.cond = threading.Condition()
        self.ping_tx_rx = (0, 0)
        self.ping_out = ""
        self.ping_done = threading.Event()
        self.config_path = ""

    def start_session(self, sess: Session) -> None:
        self.sess = sess
        ns = sess.ns
        ns.ip("link", "add", "inj0", "mtu", str(HOST_MTU), "type", "veth", "peer", "name", "inj1")
        ns.ip("link", "set", "inj0", "up")
        ns.ip("link", "set", "inj1", "mtu", str(HOST_MTU), "up")
        ns.tc("qdisc", "add", "dev", "inj1", "clsact")
        ns.tc("filter", "add", "dev", "inj1", "ingress", "protocol", "all", "u32", "match", "u32",
              "0", "0", "action", "mirred", "ingress", "redirect", "dev", sess.guest_tap)

    def prepare(self, run: Run) -> None:
        self.run = run
        self.out_lines, self.json_objs = [], []
        self.ping_tx_rx, self.ping_out = (0, 0), ""
        self.ping_done = threading.Event()
        ns, mtu = run.ns, run.scn.mtu
        self.plain = Netns("p").create()
        ns.ip("link", "add", "veth-plain0", "mtu", str(mtu), "type", "veth", "peer", "name",
              "veth-plain1", "netns", self.plain.name)
        ns.ip("link", "set", "veth-plain0", "up")
        self.plain.ip("link", "set", "veth-plain1", "address", run.peer.mac, "mtu", str(mtu))
        self.plain.ip("addr", "add", f"{run.peer.ip}/24", "dev", "veth-plain1")
        self.plain.ip("link", "set", "veth-plain1", "up")
        # as in the guest: no ARP re-probes in the middle of a scenario
        self.plain.exec_sh("echo 600 > /proc/sys/net/ipv4/neigh/veth-plain1/delay_first_probe_time; "
                           "echo 600000 > /proc/sys/net/ipv4/neigh/veth-plain1/base_reachable_time_ms")
        self.config_path = os.path.join(run.log_dir, "forwarder.toml")
        with open(self.config_path, "w") as f:
            f.write(forwarder_config(run.scn, run.peer, run.guest, "veth-plain0", run.guest_tap))
        t = int(run.deadline - time.monotonic()) + 15
        argv = [*ns.prefix(), "timeout", "-k", "5", str(t), self.binary, "forward", "--config",
                self.config_path, *self.extra_args]
        self.proc = start_proc(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        threading.Thread(target=self._reader, args=(self.proc,), daemon=True).start()

    def _reader(self, proc: subprocess.Popen) -> None:
        assert proc.stdout and self.run
        buf: list[str] = []
        with open(os.path.join(self.run.log_dir, "forwarder.log"), "w") as logf:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                logf.write(line + "\n")
                logf.flush()
                with self.cond:
                    self.out_lines.append(line)
                    if buf or line.startswith("{"):
                        buf.append(line)
                        try:
                            obj = json.loads("\n".join(buf))
                        except json.JSONDecodeError:
                            if len(buf) > 500:
                                buf = []
                        else:
                            buf = []
                            if isinstance(obj, dict):
                                self.json_objs.append(obj)
                    self.cond.notify_all()

    def _forwarder_pid(self) -> int | None:
        """The forwarder itself (child of timeout), so that SIGUSR1 does not hit timeout."""
        if not self.proc:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
            return int(kids[0]) if kids else None
        except OSError:
            return None

    def wait_ready(self) -> bool:
        time.sleep(0.5)
        return bool(self.proc and self.proc.poll() is None)

    def on_guest_ready(self) -> None:
        threading.Thread(target=self._pings, daemon=True).start()

    def _pings(self) -> None:
        assert self.run and self.plain
        scn, g = self.run.scn, self.run.guest
        try:
            end = min(self.run.deadline, time.monotonic() + 60)
            while time.monotonic() < end:
                r = sh([*self.plain.prefix(), "ping", "-c", "1", "-W", "1", "-q", g.ip], check=False)
                if r.returncode == 0:
                    break
                time.sleep(0.2)
            cmd = [*self.plain.prefix(), "ping", "-c", str(scn.count), "-i", "0.2", "-s",
                   str(scn.size), "-W", "2", "-q", *(["-M", "do"] if scn.df else []), g.ip]
            r = sh(cmd, check=False, timeout=max(5, self.run.deadline - time.monotonic()))
            self.ping_out = r.stdout
            m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
            if m:
                self.ping_tx_rx = (int(m.group(1)), int(m.group(2)))
        except Exception as e:  # noqa: BLE001 - reported through ping_result
            self.ping_out = f"ping thread failed: {e}"
        finally:
            self.ping_done.set()

    def wait_tx_done(self) -> bool:
        assert self.run
        return self.ping_done.wait(max(0.1, self.run.deadline - time.monotonic()))

    def ping_result(self) -> tuple[int, int]:
        return self.ping_tx_rx

    def inject(self, frames: list[bytes]) -> str:
        assert self.run
        return inject(self.run.ns, "inj0", frames, os.path.join(self.run.log_dir, "inject-to-peer.pcap"))

    def finish(self) -> None:
        """Ask for the counters (SIGUSR1), then stop the forwarder; it prints them at exit too."""
        pid = self._forwarder_pid()
        if pid:
            n = len(self.json_objs)
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
            end = time.monotonic() + 3
            with self.cond:
                while len(self.json_objs) == n and time.monotonic() < end:
                    self.cond.wait(0.2)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                kill_tree(self.proc)
        time.sleep(0.2)

    def counters(self) -> dict:
        with self.cond:
            return normalize_forwarder(self.json_objs[-1] if self.json_objs else None)

    def status(self) -> tuple[bool, str]:
        if not self.json_objs:
            return False, "forwarder printed no counters JSON"
        if self.proc and self.proc.returncode not in (0, None, -signal.SIGTERM, 143):
            return False, f"forwarder exited with {self.proc.returncode}"
        return True, ""

    def diagnostics(self) -> str:
        with self.cond:
            out = "\n".join(self.out_lines[-200:])
        cfg = open(self.config_path).read() if self.config_path else ""
        return (f"--- forwarder config {self.config_path} ---\n{cfg}"
                f"--- forwarder output (last 200 lines) ---\n{out}\n--- host pings ---\n{self.ping_out}")

    def end_scenario(self) -> None:
        if self.proc:
            kill_tree(self.proc)
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)
            self.proc = None
        if self.plain:
            self.plain.delete()
            self.plain = None
        if self.sess:
            self.sess.ns.ip("link", "del", "veth-plain0") if _link_exists(self.sess.ns, "veth-plain0") else None


def _link_exists(ns: Netns, name: str) -> bool:
    return sh(["ip", "-n", ns.name, "link", "show", name], check=False).returncode == 0
