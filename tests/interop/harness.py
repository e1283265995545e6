"""Infrastructure of the MACsec interop harness (Python 3 stdlib only).

- Netns: a private network namespace with a unique name, deleted on cleanup.
- Vm: one QEMU guest (Debian's kernel + our initramfs) on a tap, console read live.
- WireDump: one scenario's slice of QEMU's dump of the guest NIC (the frames on the wire).
- Endpoint / Scenario: the parameters of one MACsec station and of one test.
- HostPeer: the MACsec peer on the host side of the guest's tap, with two implementations:
    VmPeer        a second guest VM (kernel <-> kernel; validates the harness itself)
    ForwarderPeer our `macsec forward --config FILE` process (static keys or MKA)
- forwarder_config() / secy_config(): TOML for `macsec forward` and `macsec pcap`.
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
                 log_path: str, timeout_s: int, accel: str = "tcg", memory: int = 256,
                 dump: str = "") -> None:
        self.dump = dump  # QEMU's filter-dump of the NIC (both directions) goes here
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
            # vnet_hdr=off: frames cross the tap whole (no offload header), which is also
            # what filter-dump records (QEMU 7.2 would otherwise put the 12-octet virtio-net
            # header in front of each frame of the dump)
            "-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no,vnet_hdr=off",
            "-device", f"virtio-net-pci,netdev=n0,mac={self.mac},romfile=",
            *(["-object", f"filter-dump,id=d0,netdev=n0,file={self.dump},maxlen=65535"]
              if self.dump else []),
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

    def mka_times(self, start: int = 0) -> tuple[float | None, float | None]:
        """Host monotonic times of "=== MKA START" (wpa_supplicant started) and "=== MKA UP"
        (its TX and RX SAs active) on this guest's console, from line index start."""
        a, b = self.time_of(r"^=== MKA START", start), self.time_of(r"^=== MKA UP", start)
        return (None if a is None else self.t_start + a), (None if b is None else self.t_start + b)

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


def wpa_status(console: str) -> dict:
    """wpa_supplicant's MKA view from the `wpa_cli status` lines a guest prints ("wpa: k=v"),
    in the shape of the forwarder's MKA status: is_key_server, key_server (SCI hex), state.

    Uses the participant's fields (is_key_server, key_server_sci): wpa_supplicant 2.10's
    KaY-level "Is Key Server" line stays "No" even on the elected key server."""
    kv: dict = {}
    for line in console.splitlines():
        m = re.search(r"wpa: ([A-Za-z_ ]+)=(.*)$", line)
        if m:
            kv.setdefault(m.group(1).strip(), m.group(2).strip())
    if not kv:
        return {}
    r: dict = {"raw": kv}
    if "is_key_server" in kv:
        r["is_key_server"] = kv["is_key_server"] == "Yes"
    m = re.fullmatch(r"([0-9a-fA-F:]{17})@(\d+)", kv.get("key_server_sci", ""))
    if m:
        r["key_server"] = m.group(1).replace(":", "").upper() + f"{int(m.group(2)):04X}"
    if "Secured" in kv:
        r["state"] = "secured" if kv["Secured"] == "Yes" else "pending"
    return r


def session_vm(label: str, image: "Image", ns: Netns, tap: str, mac: str, log_path: str,
               timeout_s: int, accel: str, dump: str = "") -> Vm:
    """A guest that boots once and then runs scenarios sent on its console."""
    if "," in dump:
        raise ValueError(f"QEMU option values cannot hold a comma: {dump}")
    return Vm(label, image, ns, tap, mac, {"session": 1, "session_idle": 600}, log_path,
              timeout_s, accel=accel, dump=dump)


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
    """Flat counters from the JSON `macsec forward` prints on SIGUSR1 / at exit:

        {"event": "stats"|"exit", "counters": {"secy": {...}, "tx_sc": {..., "sa": [...]},
         "rx_sc": [{..., "sa": [...]}]}, "pumps": {...}, "forwarder": {...}}

    Each 802.1AE counter is taken from the level it belongs to: SecY counters from "secy",
    TX SC counters from "tx_sc", RX SC counters summed over "rx_sc" (the SecY object also
    carries octet totals, which must not be added twice). tx_pn / rx_pn: the highest next PN
    of the TX SAs / the RX SAs (64-bit). Also accepted, for stand-ins: the same keys flat at
    the top level, and tx_pn / rx_pn there."""
    if not obj:
        return {}
    src = obj.get("counters") if isinstance(obj.get("counters"), dict) else obj
    c: dict = {k: 0 for k in ALL_KEYS}

    def take(d: dict, keys: list[str]) -> None:
        for k in keys:
            if isinstance(d.get(k), int):
                c[k] += d[k]

    nested = any(isinstance(src.get(k), (dict, list)) for k in ("secy", "tx_sc", "rx_sc"))
    if not nested:
        take(src, ALL_KEYS)
    secy = src.get("secy") if isinstance(src.get("secy"), dict) else {}
    take(secy, SECY_KEYS)
    tx = src.get("tx_sc") if isinstance(src.get("tx_sc"), dict) else {}
    take(tx, TX_SC_KEYS)
    rx = src.get("rx_sc")
    rx = [rx] if isinstance(rx, dict) else (rx or [])
    for sc in rx:
        if isinstance(sc, dict):
            take(sc, RX_SC_KEYS)

    def pn(v) -> int:
        try:
            return int(str(v), 0) if v is not None else 0
        except ValueError:
            return 0

    c["tx_pn"] = max([pn(sa.get("next_pn")) for sa in tx.get("sa", []) if isinstance(sa, dict)]
                     + [pn(src.get("tx_pn"))])
    c["rx_pn"] = max([pn(sa.get("next_pn")) for sc in rx if isinstance(sc, dict)
                      for sa in sc.get("sa", []) if isinstance(sa, dict)] + [pn(src.get("rx_pn"))])
    return c


def forwarder_mka(obj: dict | None) -> dict:
    """The forwarder's MKA status object (`forwarder.mka` of its counters JSON), or {}."""
    if not obj:
        return {}
    f = obj.get("forwarder") if isinstance(obj.get("forwarder"), dict) else {}
    m = f.get("mka")
    return m if isinstance(m, dict) else {}


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
    end_station: bool = False    # ES=1: the SCI is the source MAC || port 1, not sent
    scb: bool = False            # SCB=1: EPON single copy broadcast, SCI not sent
    validate: str = "strict"     # both sides' validateFrames: strict | check
    replay: bool = True
    window: int = 0
    mtu: int = 1500
    size: int = 56
    count: int = 5
    df: bool = False
    guest_an: int = 0
    peer_an: int = 0
    start_pn: int = 1            # first PN in both directions (and the receivers' lowest PN)
    negative: str = ""           # "" | inject-to-guest | inject-to-peer | guest-sends-bad | guest-restart | ...
    note: str = ""
    wrap: bool = False           # the XPN 32-bit wire PN must wrap during the test
    mka: bool = False            # SAs from MKA (wpa_supplicant in the guest), not static keys
    mka_guest_prio: int = 16     # MKA key server priorities (lower wins; equal: lower SCI)
    mka_peer_prio: int = 32
    cak_len: int = 16            # MKA: CAK octets, 16 or 32 (802.1X-2010 6.2)
    tcp: int = 0                 # TCP bulk transfer: this many bytes each way (0: none)
    restart: bool = False        # MKA: the host-side peer is restarted after the pings
    rekey: bool = False          # MKA: the host-side peer (key server) distributes a new SAK
                                 # during a second, faster ping run (needs supports_rekey)
    vlan: int = 0                # both SecYs on 802.1Q VLAN `vlan` (the guest's macsec0 on
                                 # eth0.<vlan>; ours with vlan_in_clear = 1 and [mka] vlan):
                                 # the tag is in clear before the SecTAG, MKPDUs carry it too
    mka_chain: bool = False      # MKA: ours is a key chain ([[mka.keys]], see mka_chain_keys):
                                 # an expired key, a pending one and the guest's single key
                                 # (needs supports_key_chain)
    extra: dict = field(default_factory=dict)

    @property
    def mka_key_server(self) -> str:
        """Which side must be elected key server: "guest" or "peer" (802.1X 9.5: lower
        priority wins, then the lower SCI; the guest's MAC ...:01 is the lower)."""
        return "peer" if self.mka_peer_prio < self.mka_guest_prio else "guest"

    def mka_keys(self) -> tuple[str, str]:
        """(CAK, CKN) hex: a CAK of cak_len octets (wpa_supplicant 2.10's mka_cak takes 16
        or 32) and a 32-octet CKN."""
        return _hexkey(f"{self.name}/cak", self.cak_len), _hexkey(f"{self.name}/ckn", 32)

    def mka_chain_other_keys(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """The (CAK, CKN) of the expired and of the pending key of our key chain (mka_chain)."""
        return ((_hexkey(f"{self.name}/expired-cak", self.cak_len),
                 _hexkey(f"{self.name}/expired-ckn", 32)),
                (_hexkey(f"{self.name}/pending-cak", self.cak_len),
                 _hexkey(f"{self.name}/pending-ckn", 32)))

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
        "end_station": "on" if scn.end_station else "off", "scb": "on" if scn.scb else "off",
        "validate": scn.validate, "replay": "on" if scn.replay else "off", "window": scn.window,
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
        cak, ckn = scn.mka_keys()
        p.update(mka="on", mka_cak=cak, mka_ckn=ckn,
                 mka_priority=scn.mka_guest_prio if role == "guest" else scn.mka_peer_prio)
    if scn.tcp:
        p.update(tcp=scn.tcp, tcp_role="server" if role == "guest" else "client")
    if scn.vlan:
        p["vlan"] = scn.vlan
    if neg:
        p["neg"] = neg
    return p


def tcp_done(console: str) -> dict:
    """The last "=== TCP DONE k=v ... ===" line of a guest's console, as a dict."""
    r: dict = {}
    for line in console.splitlines():
        m = re.search(r"=== TCP DONE (.*) ===", line)
        if m:
            r = dict(w.split("=", 1) for w in m.group(1).split() if "=" in w)
    for k in ("sent_bytes", "recv_bytes"):
        if k in r:
            try:
                r[k] = int(r[k])
            except ValueError:
                pass
    return r


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_pn(v: int) -> str:
    return str(v) if v < 2**53 else _toml_str(hex(v))


def _toml_bool(v: bool) -> str:
    return "true" if v else "false"


def secy_config(scn: Scenario, sci: str, tx: Endpoint | None, rx: Endpoint | list | None,
                tx_pn: int | None = None) -> list[str]:
    """The [secy] section (TOML lines) of `macsec forward` / `macsec pcap`: this SecY's SCI,
    the scenario's flags, and static keys: a TX SA sending like `tx` (from PN tx_pn, default
    tx.pn) and an RX SC + SA receiving from `rx` (or from each of a list); either may be None
    (and both are with MKA)."""
    q, b = _toml_str, _toml_bool
    lines = [
        "[secy]", f"cipher = {q(scn.cipher)}", f"encrypt = {b(scn.encrypt)}",
        "confidentiality_offset = 0", f"send_sci = {b(scn.send_sci)}",
        f"end_station = {b(scn.end_station)}", f"scb = {b(scn.scb)}", f"validate = {q(scn.validate)}",
        f"replay_protect = {b(scn.replay)}",
        f"replay_window = {scn.window}", f"vlan_in_clear = {1 if scn.vlan else 0}", f"sci = {q(sci)}",
    ]
    if tx is not None:
        lines += ["", "[secy.tx]", f"encoding_sa = {tx.an}", "", "[[secy.tx.sa]]", f"an = {tx.an}",
                  f"key = {q(tx.key)}", f"pn = {_toml_pn(tx.pn if tx_pn is None else tx_pn)}"]
        if scn.xpn:
            lines += [f"ssci = {q(tx.ssci)}", f"salt = {q(tx.salt)}"]
    for r in ([] if rx is None else rx if isinstance(rx, list) else [rx]):
        lines += ["", "[[secy.rx]]", f"sci = {q(r.sci)}", "", "[[secy.rx.sa]]", f"an = {r.an}",
                  f"key = {q(r.key)}", f"pn = {_toml_pn(r.pn)}"]
        if scn.xpn:
            lines += [f"ssci = {q(r.ssci)}", f"salt = {q(r.salt)}"]
    return lines


def mka_chain_keys(scn: Scenario) -> list[str]:
    """The [[mka.keys]] tables (TOML lines) of a key chain around the scenario's key: one key
    that ended in 2020 (an RFC 3339 string), one that starts only in 2099 (a TOML datetime),
    both with CKNs and CAKs of their own (CKNs differ within a chain), and the scenario's
    CKN/CAK, the one wpa_supplicant has, without start or end. Only that one may be used."""
    q = _toml_str
    cak, ckn = scn.mka_keys()
    (old_cak, old_ckn), (new_cak, new_ckn) = scn.mka_chain_other_keys()
    return ["", "[[mka.keys]]", f"ckn = {q(old_ckn)}", f"cak = {q(old_cak)}",
            f"end = {q('2020-01-01T00:00:00Z')}",
            "", "[[mka.keys]]", f"ckn = {q(new_ckn)}", f"cak = {q(new_cak)}",
            "start = 2099-01-01T00:00:00Z",
            "", "[[mka.keys]]", f"ckn = {q(ckn)}", f"cak = {q(cak)}"]


def forwarder_chain_problems(scn: Scenario, obj: dict | None) -> list[str]:
    """With a key chain (scn.mka_chain): what is wrong in the forwarder's counters JSON
    (`mka.ckn`, `mka.keys` of the link or of `forwarder`): the CA carrying traffic must be the
    scenario's CKN, the ended key `expired`, the 2099 key `pending`, the scenario's `active`
    and the only one in use."""
    if not obj:
        return ["no counters JSON"]
    cands = [forwarder_mka(obj)]
    links = obj.get("links")
    if isinstance(links, list) and links and isinstance(links[0], dict):
        cands.insert(0, links[0].get("mka") if isinstance(links[0].get("mka"), dict) else {})
    m = next((c for c in cands if c.get("ckn") or c.get("keys")), None)
    if m is None:
        return ["the counters JSON does not say which key is in use (no mka.ckn / mka.keys)"]
    _cak, ckn = scn.mka_keys()
    (_oc, old_ckn), (_nc, new_ckn) = scn.mka_chain_other_keys()
    bad = []
    if str(m.get("ckn", "")).lower() != ckn.lower():
        bad.append(f"mka.ckn {m.get('ckn')!r} (want the guest's {ckn.lower()})")
    keys = {str(k.get("ckn", "")).lower(): k for k in m.get("keys") or [] if isinstance(k, dict)}
    for c, state, used in ((old_ckn, "expired", False), (new_ckn, "pending", False),
                           (ckn, "active", True)):
        k = keys.get(c.lower())
        if k is None:
            bad.append(f"mka.keys has no {c.lower()}: {m.get('keys')}")
        elif k.get("state") != state or bool(k.get("in_use")) != used:
            bad.append(f"mka.keys {c.lower()}: state {k.get('state')!r} in_use {k.get('in_use')!r} "
                       f"(want {state!r}, {used})")
    return bad


def forwarder_config(scn: Scenario, me: Endpoint, other: Endpoint, plain: str, secure: str,
                     state_file: str = "") -> str:
    """TOML config of `macsec forward` for the host side (me) talking to the guest (other).

    Static keys: me's TX SA and an RX SC for other. MKA (scn.mka): no SAs, an [mka] section
    with the scenario's CAK/CKN and me's key server priority (GCM-AES-128: all wpa_supplicant
    2.10 does). state_file: the PN high-water mark file ([forward] state_file), fresh per run."""
    q = _toml_str
    lines = [f"# scenario {scn.name}", "[ports]", f"plain = {q(plain)}", f"secure = {q(secure)}", ""]
    if scn.mka:
        lines += secy_config(scn, me.sci, None, None)
        cak, ckn = scn.mka_keys()
        lines += ["", "[mka]"]
        if not scn.mka_chain:
            lines += [f"ckn = {q(ckn)}", f"cak = {q(cak)}"]
        lines += [f"priority = {scn.mka_peer_prio}", f"cipher = {q(scn.cipher)}"]
        if scn.vlan:
            lines += [f"vlan = {scn.vlan}"]
        if scn.mka_chain:
            lines += mka_chain_keys(scn)
    else:
        lines += secy_config(scn, me.sci, me, other)
    if state_file:
        lines += ["", "[forward]", f"state_file = {q(state_file)}"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- capture


class WireDump:
    """One scenario's slice of the guest NIC's QEMU filter-dump (every frame the guest sent
    or received, in order, seen inside QEMU): start(), frames(), stop().

    Unlike tcpdump on the tap, this also sees frames that a host-side sender hands to the
    tap driver directly: `macsec forward` transmits with PACKET_QDISC_BYPASS, which skips
    every packet tap of the host kernel. It does not see frames injected towards the host
    side (inj0 -> tapg ingress), which never reach the guest."""

    def __init__(self, session_dump: str, path: str) -> None:
        self.session_dump, self.path = session_dump, path
        self.offset = 24

    def _data(self) -> bytes:
        try:
            with open(self.session_dump, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def start(self) -> None:
        data = self._data()
        recs = macsec_wire.pcap_records(data, self.session_dump)
        self.offset = recs[-1][1] if recs else 24  # after the last complete record

    def frames(self) -> list[bytes]:
        try:
            return [f for f, _o in macsec_wire.pcap_records(self._data(), self.session_dump, self.offset)]
        except ValueError:
            return []

    def stop(self) -> None:
        macsec_wire.write_pcap(self.path, self.frames())


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
    wpa_supplicant itself); supports_rekey (rekey_during_pings / restart_and_ping: the
    forwarder only, the peer VM's wpa_supplicant cannot be told to rekey).
    Optional: problems_in_log, pump_counters, mka_status, mka_times, tcp_exchange.
    """

    label = "?"
    pn64 = False
    supports_mka = False
    supports_rekey = False  # rekey_during_pings(), restart_and_ping(): MKA rekey / restart
    supports_key_chain = False  # an [mka] key chain (scn.mka_chain): the forwarder only
    times: dict = {}  # timings the peer measured itself (e.g. mka_secured_s)

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
    def problems_in_log(self) -> list[str]: return []
    def pump_counters(self) -> dict: return {}
    def rekey_during_pings(self, count: int, interval: float) -> dict: raise NotImplementedError
    def tcp_exchange(self, nbytes: int) -> dict:
        """TCP with the listening guest: nbytes each way; returns {sent_bytes, sent_md5,
        recv_bytes, recv_md5} from this side's view (see tcp_client.py)."""
        raise NotImplementedError
    def mka_status(self) -> dict: return {}
    def mka_times(self) -> tuple[float | None, float | None]:
        """(MKA start, secured) as host monotonic times, when known."""
        return None, None


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

    def mka_times(self) -> tuple[float | None, float | None]:
        assert self.vm
        return self.vm.mka_times(self.m)

    def mka_status(self) -> dict:
        assert self.vm
        return wpa_status(self.vm.console(self.m))

    def tcp_exchange(self, nbytes: int) -> dict:
        """The peer VM is the client (tcp_role=client); wait for its TCP DONE line."""
        assert self.vm and self.run
        self.vm.wait_for(r"^=== TCP DONE", self.run.deadline, start=self.m)
        return tcp_done(self.vm.console(self.m))

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
    The forwarder runs as `ip netns exec NS timeout -k 5 T BIN forward --config FILE`; its
    stdout (counters JSON) and stderr (log) are read live on separate pipes. SIGUSR1 (to the
    forwarder itself, not to timeout) makes it print its counters as one JSON line, and it
    prints them again when it exits on SIGTERM (exit status 0).

    With MKA (scn.mka) the config has an [mka] section instead of static SAs; the forwarder is
    ready once it logs "MKA: secured", and the time from its start to that line is kept in
    self.times (mka_secured_s).
    """

    label = "macsec-forward"
    pn64 = True
    supports_mka = True
    supports_rekey = True  # SIGHUP: the key server distributes a new SAK
    supports_key_chain = True  # [[mka.keys]] (forwarder_config with scn.mka_chain)

    def __init__(self, binary: str, extra_args: list[str] | None = None) -> None:
        self.binary = binary
        self.extra_args = extra_args or []
        self.sess: Session | None = None
        self.run: Run | None = None
        self.plain: Netns | None = None
        self.shim: subprocess.Popen | None = None  # vlan_shim.py, for scenarios on a VLAN
        self.proc: subprocess.Popen | None = None
        self.out_lines: list[str] = []   # stdout
        self.err_lines: list[tuple[float, str]] = []  # stderr, with host monotonic times
        self.json_objs: list[dict] = []
        self.cond = threading.Condition()
        self.ping_tx_rx = (0, 0)
        self.ping_out = ""
        self.ping_done = threading.Event()
        self.config_path = ""
        self.t_start = 0.0
        self.times: dict = {}
        self.prev: list[tuple[int | None, dict | None]] = []  # (exit status, exit JSON) of runs before a restart

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
        self.out_lines, self.err_lines, self.json_objs = [], [], []
        self.ping_tx_rx, self.ping_out = (0, 0), ""
        self.ping_done = threading.Event()
        self.times = {}
        ns, mtu = run.ns, run.scn.mtu
        self.plain = Netns("p").create()
        ns.ip("link", "add", "veth-plain0", "mtu", str(mtu), "type", "veth", "peer", "name",
              "veth-plain1", "netns", self.plain.name)
        ns.ip("link", "set", "veth-plain0", "up")
        self.plain.ip("link", "set", "veth-plain1", "address", run.peer.mac, "mtu", str(mtu))
        self.plain.ip("link", "set", "veth-plain1", "up")
        host_if = "veth-plain1"
        self.shim = None
        if run.scn.vlan:
            # The host sits on the VLAN: its frames reach the forwarder tagged and keep the
            # tag in clear. The host kernels here lack VLAN devices, so a userspace access
            # port (vlan_shim.py) tags and untags between veth-plain1 and the host's vh0.
            host_if = "vh0"
            self.plain.ip("link", "add", "vh0", "mtu", str(mtu), "type", "veth", "peer", "name",
                          "vs0", "mtu", str(mtu))
            self.plain.ip("link", "set", "vh0", "address", run.peer.mac, "up")
            self.plain.ip("link", "set", "vs0", "up")
            t = int(run.deadline - time.monotonic()) + 15
            self.shim = start_proc([*self.plain.prefix(), sys.executable,
                                    os.path.join(HERE, "vlan_shim.py"), "vs0", "veth-plain1",
                                    str(run.scn.vlan), str(t)],
                                   stdin=subprocess.PIPE,
                                   stdout=open(os.path.join(run.log_dir, "vlan-shim.log"), "w"),
                                   stderr=subprocess.STDOUT)
        self.plain.ip("addr", "add", f"{run.peer.ip}/24", "dev", host_if)
        # as in the guest: no ARP re-probes in the middle of a scenario
        self.plain.exec_sh(f"echo 600 > /proc/sys/net/ipv4/neigh/{host_if}/delay_first_probe_time; "
                           f"echo 600000 > /proc/sys/net/ipv4/neigh/{host_if}/base_reachable_time_ms")
        self.config_path = os.path.join(run.log_dir, "forwarder.toml")
        state = os.path.join(run.log_dir, "forwarder.pn-state")
        for old in (state, state + ".tmp"):  # a fresh PN store: the configured PNs are used
            if os.path.exists(old):
                os.remove(old)
        with open(self.config_path, "w") as f:
            f.write(forwarder_config(run.scn, run.peer, run.guest, "veth-plain0", run.guest_tap,
                                     state_file=state))
        os.chmod(self.config_path, 0o600)  # it holds keys
        self.prev = []
        self._spawn("")

    def _spawn(self, suffix: str) -> None:
        """Starts the forwarder with self.config_path; logs forwarder{suffix}.log/.stdout."""
        assert self.run
        t = int(self.run.deadline - time.monotonic()) + 15
        argv = [*self.run.ns.prefix(), "timeout", "-k", "5", str(t), self.binary, "forward",
                "--config", self.config_path, *self.extra_args]
        t0 = time.monotonic()
        if not suffix:
            self.t_start = t0
        self.proc = start_proc(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
        threading.Thread(target=self._read_stdout, args=(self.proc, suffix), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self.proc, suffix, t0), daemon=True).start()

    def _read_stdout(self, proc: subprocess.Popen, suffix: str = "") -> None:
        assert proc.stdout and self.run
        with open(os.path.join(self.run.log_dir, f"forwarder{suffix}.stdout"), "w") as logf:
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                logf.write(line + "\n")
                logf.flush()
                obj = None
                if line.startswith("{"):
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError:
                        obj = None
                with self.cond:
                    self.out_lines.append(line)
                    if isinstance(obj, dict):
                        self.json_objs.append(obj)
                    self.cond.notify_all()

    def _read_stderr(self, proc: subprocess.Popen, suffix: str = "", t0: float = 0.0) -> None:
        assert proc.stderr and self.run
        with open(os.path.join(self.run.log_dir, f"forwarder{suffix}.log"), "w") as logf:
            for raw in iter(proc.stderr.readline, b""):
                line = ANSI.sub(b"", raw).decode("utf-8", "replace").rstrip("\n")
                t = time.monotonic()
                logf.write(f"{t - t0:7.3f} {line}\n")
                logf.flush()
                with self.cond:
                    self.err_lines.append((t, line))
                    if "macsec forward:" in line and "started_s" not in self.times:
                        self.times["started_s"] = t - self.t_start
                    if "MKA: secured" in line and "mka_secured_s" not in self.times:
                        self.times["mka_secured_s"] = t - self.t_start
                        self.times["mka_secured_at"] = t
                    self.cond.notify_all()

    def _wait_log(self, pattern: str, deadline: float, start: int = 0) -> bool:
        rx = re.compile(pattern)
        i = start
        with self.cond:
            while True:
                while i < len(self.err_lines):
                    if rx.search(self.err_lines[i][1]):
                        return True
                    i += 1
                if not (self.proc and self.proc.poll() is None) or time.monotonic() >= deadline:
                    return False
                self.cond.wait(0.2)

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
        """Started ("macsec forward:" logged); with MKA, secured ("MKA: secured")."""
        assert self.run
        end = min(self.run.deadline, time.monotonic() + (60 if self.run.scn.mka else 15))
        if not self._wait_log(r"macsec forward:", end):
            return False
        if self.run.scn.mka:
            return self._wait_log(r"MKA: secured", end)
        return True

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

    def tcp_exchange(self, nbytes: int) -> dict:
        """tcp_client.py in the plain namespace against the guest; adds the forwarder's pump
        counters (GSO super-frames segmented, checksums completed) at the end."""
        assert self.run and self.plain
        r = sh([*self.plain.prefix(), sys.executable, os.path.join(HERE, "tcp_client.py"),
                self.run.guest.ip, str(nbytes)], check=False,
               timeout=max(10, min(90, self.run.deadline - time.monotonic())))
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    pass
        return {"error": r.stdout.strip()[-300:]}

    def pump_counters(self) -> dict:
        j = self.last_json() or {}
        return j.get("pumps", {}) if isinstance(j.get("pumps"), dict) else {}

    def rekey_during_pings(self, count: int, interval: float) -> dict:
        """Pings the guest count times every interval seconds and, 0.5 s into that, sends
        SIGHUP (we are key server: a new SAK is distributed and both sides move to its AN).
        Returns {"tx", "rx" (pings), "an" (the AN we transmit with at the end), "secs" (SIGHUP
        to our 'transmitting with AN' log line), "log" (what happened)}."""
        assert self.run and self.plain
        r: dict = {"tx": 0, "rx": 0, "an": None, "secs": None}
        n0 = len(self.err_lines)
        cmd = [*self.plain.prefix(), "ping", "-c", str(count), "-i", str(interval), "-W", "2", "-q",
               self.run.guest.ip]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(0.5)
            pid = self._forwarder_pid()
            t0 = time.monotonic()
            if pid:
                os.kill(pid, signal.SIGHUP)
            rx = re.compile(r"MKA: transmitting with AN (\d)")
            end = min(self.run.deadline, time.monotonic() + 20)
            with self.cond:
                while time.monotonic() < end and r["an"] is None:
                    for t, line in self.err_lines[n0:]:
                        m = rx.search(line)
                        if m:
                            r["an"], r["secs"] = int(m.group(1)), t - t0
                    self.cond.wait(0.2)
            out, _ = p.communicate(timeout=max(5, count * interval + 10))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out or "")
        if m:
            r["tx"], r["rx"] = int(m.group(1)), int(m.group(2))
        r["ping"] = (out or "").strip().splitlines()[-2:] if out else []
        return r

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
        time.sleep(0.1)

    def last_json(self) -> dict | None:
        with self.cond:
            return self.json_objs[-1] if self.json_objs else None

    def counters(self) -> dict:
        """The counters at exit; after restarts, summed over the runs (PNs: the last run's)."""
        c = normalize_forwarder(self.last_json())
        for _rc, obj in self.prev:
            for k, v in normalize_forwarder(obj).items():
                if k not in ("tx_pn", "rx_pn") and c:
                    c[k] = c.get(k, 0) + v
        return c

    def restart_and_ping(self, count: int) -> dict:
        """MKA: stops the forwarder (SIGTERM; its exit counters are kept), starts it again
        with the same config (a new MKA participant: new MI, new SAK), waits for it to log
        'MKA: secured', then pings the guest until a reply comes back, then count times.
        Returns {secured_s, first_reply_s (both from the restart), tx, rx}."""
        assert self.run and self.plain
        r: dict = {"secured_s": None, "first_reply_s": None, "tx": 0, "rx": 0}
        self.finish()
        rc = self.proc.returncode if self.proc else None
        if self.proc in _live_procs:
            _live_procs.remove(self.proc)
        with self.cond:
            self.prev.append((rc, self.json_objs[-1] if self.json_objs else None))
            self.json_objs = []
            n0 = len(self.err_lines)
        t0 = time.monotonic()
        self._spawn(f"-{len(self.prev) + 1}")
        end = min(self.run.deadline, t0 + 40)
        if self._wait_log(r"MKA: secured", end, start=n0):
            r["secured_s"] = time.monotonic() - t0
        while time.monotonic() < end:
            p = sh([*self.plain.prefix(), "ping", "-c", "1", "-W", "1", "-q", self.run.guest.ip],
                   check=False)
            if p.returncode == 0:
                r["first_reply_s"] = time.monotonic() - t0
                break
            time.sleep(0.2)
        p = sh([*self.plain.prefix(), "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-q",
                self.run.guest.ip], check=False, timeout=count * 0.2 + 10)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", p.stdout)
        if m:
            r["tx"], r["rx"] = int(m.group(1)), int(m.group(2))
        return r

    def mka_status(self) -> dict:
        return forwarder_mka(self.last_json())

    def mka_times(self) -> tuple[float | None, float | None]:
        return (self.t_start or None), self.times.get("mka_secured_at")

    def status(self) -> tuple[bool, str]:
        if not self.json_objs:
            return False, "forwarder printed no counters JSON"
        if self.proc and self.proc.returncode != 0:
            return False, f"forwarder exited with {self.proc.returncode} (want 0 after SIGTERM)"
        for rc, obj in self.prev:
            if rc != 0 or not obj:
                return False, f"forwarder (before its restart) exited with {rc}, counters {bool(obj)}"
        if self.json_objs[-1].get("event") not in (None, "exit"):
            return False, "forwarder printed no counters at exit"
        if self.run and self.run.scn.mka:
            m = self.mka_status()
            want = self.run.scn.mka_key_server == "peer"
            if m.get("state") != "secured":
                return False, f"forwarder MKA state {m.get('state')!r} at exit (want secured)"
            if bool(m.get("is_key_server")) != want:
                return False, (f"forwarder is_key_server={m.get('is_key_server')} (want {want}: "
                               f"priorities ours {self.run.scn.mka_peer_prio}, guest "
                               f"{self.run.scn.mka_guest_prio})")
            if want is False and m.get("key_server") != self.run.guest.sci:
                return False, f"forwarder's key server is {m.get('key_server')} (want the guest's SCI)"
            if self.run.scn.mka_chain:
                bad = forwarder_chain_problems(self.run.scn, self.last_json())
                if bad:
                    return False, "key chain: " + "; ".join(bad)
        return True, ""

    def problems_in_log(self) -> list[str]:
        """ERROR lines of the forwarder's log (they fail the scenario)."""
        with self.cond:
            return [line for _t, line in self.err_lines if " ERROR " in line or "panicked" in line]

    def diagnostics(self) -> str:
        with self.cond:
            err = "\n".join(f"{t - self.t_start:7.3f} {line}" for t, line in self.err_lines[-200:])
            out = "\n".join(self.out_lines[-5:])
        cfg = ""
        if self.config_path and os.path.exists(self.config_path):
            with open(self.config_path) as f:
                cfg = f.read()
        return (f"--- forwarder config {self.config_path} ---\n{cfg}"
                f"--- forwarder stderr (last 200 lines) ---\n{err}\n"
                f"--- forwarder stdout (last 5 lines) ---\n{out}\n--- host pings ---\n{self.ping_out}")

    def end_scenario(self) -> None:
        if self.proc:
            kill_tree(self.proc)
            if self.proc in _live_procs:
                _live_procs.remove(self.proc)
            self.proc = None
        if self.shim:
            kill_tree(self.shim)
            if self.shim in _live_procs:
                _live_procs.remove(self.shim)
            self.shim = None
        if self.plain:
            self.plain.delete()
            self.plain = None
        if self.sess:
            # Deleting the plain namespace takes veth-plain1 and with it veth-plain0, but
            # asynchronously: wait for it to go (the next scenario creates it again), and
            # delete it only if it stays.
            end = time.monotonic() + 3
            while _link_exists(self.sess.ns, "veth-plain0") and time.monotonic() < end:
                time.sleep(0.1)
            if _link_exists(self.sess.ns, "veth-plain0"):
                sh(["ip", "-n", self.sess.ns.name, "link", "del", "veth-plain0"], check=False)
                if _link_exists(self.sess.ns, "veth-plain0"):
                    raise RuntimeError("veth-plain0 cannot be removed")


def _link_exists(ns: Netns, name: str) -> bool:
    return sh(["ip", "-n", ns.name, "link", "show", name], check=False).returncode == 0
