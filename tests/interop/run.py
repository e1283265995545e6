#!/usr/bin/env python3
"""MACsec interop suite: Debian's Linux kernel (macsec driver) in QEMU against a host-side peer.

    python3 tests/interop/run.py --peer forwarder --forwarder-bin target/release/macsec
                                                       # whole suite against `macsec forward`
                                                       # (static keys, captures, MKA)
    python3 tests/interop/run.py                       # kernel <-> kernel (second VM as peer)
    python3 tests/interop/run.py --list                # scenario names
    python3 tests/interop/run.py -k xpn -k jumbo       # scenarios whose name contains a word

Run as root on Debian 12 (tests/interop/install-host-deps.sh installs what the host needs; the
guest image is built or reused from tests/interop/cache/ by build_guest.py). Prints a table and
"N passed, N failed"; exits non-zero on any failure. See tests/interop/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_guest  # noqa: E402
import macsec_wire  # noqa: E402
from harness import (CIPHERS, HOST_MTU, Endpoint, ForwarderPeer, HostPeer, Image,  # noqa: E402
                     Netns, Run, Scenario, Vm, VmPeer, cleanup_all, forwarder_config, guest_params,
                     inject, log, make_tap, normalize_forwarder, normalize_kernel,
                     remove_stale_namespaces, secy_config, session_vm, tcp_done, WireDump, wpa_status)
from harness import Session as HSession  # noqa: E402

GUEST_TAP = "tapg"
DEFAULT_DECRYPT_CMD = "{bin} pcap decrypt --config {config} {pcap} {out}"
DEFAULT_ENCRYPT_CMD = "{bin} pcap encrypt --config {config} {pcap} {out}"


# --------------------------------------------------------------------------- scenarios


def all_scenarios() -> list[Scenario]:
    res = []
    for c in CIPHERS:
        for enc in (True, False):
            for sci in (True, False):
                res.append(Scenario(f"{c} enc={'on' if enc else 'off'} sci={'on' if sci else 'off'}",
                                    cipher=c, encrypt=enc, send_sci=sci))
    wrap = 2**32 - 2
    res += [
        Scenario("xpn-128 pn-wrap", cipher="gcm-aes-xpn-128", start_pn=wrap, wrap=True,
                 note="both directions start at PN 2^32-2"),
        Scenario("xpn-256 pn-wrap window=32 sci=off", cipher="gcm-aes-xpn-256", start_pn=wrap,
                 wrap=True, window=32, send_sci=False, note="both directions start at PN 2^32-2"),
        Scenario("an=2/3", guest_an=2, peer_an=3, note="guest sends on AN 2, peer on AN 3"),
        Scenario("end_station=on sci=off", end_station=True, send_sci=False,
                 note="ES=1, no SCI: the receivers use source MAC || port 1"),
        Scenario("scb=on sci=off", scb=True, send_sci=False,
                 note="SCB=1, no SCI (single copy broadcast)"),
        Scenario("replay window=64", window=64),
        Scenario("tcp 1MiB both ways", tcp=1 << 20,
                 note="TCP bulk transfer, 1 MiB each way, MD5 compared: the host side's GSO "
                 "super-frames and partial checksums go through the forwarder"),
        Scenario("tcp 1MiB gcm-aes-xpn-256 enc=off mtu=9000", cipher="gcm-aes-xpn-256",
                 encrypt=False, mtu=9000, tcp=1 << 20, note="the same over a 9000-octet MTU"),
        Scenario("jumbo mtu=9000 ping=8000", cipher="gcm-aes-256", mtu=9000, size=8000, df=True),
        Scenario("vlan=100 gcm-aes-xpn-128", cipher="gcm-aes-xpn-128", vlan=100,
                 note="the guest's macsec0 on the VLAN device eth0.100 (WAN MACsec over a provider "
                 "VLAN); ours with vlan_in_clear = 1: the 802.1Q tag in clear, outside the ICV"),
        Scenario("neg inject-to-guest", negative="inject-to-guest",
                 note="replayed + bit-flipped peer frame injected towards the guest kernel"),
        Scenario("neg inject-to-peer", negative="inject-to-peer",
                 note="replayed + bit-flipped guest frame injected towards the host-side peer"),
        Scenario("neg replay-in-window window=64", negative="replay-in-window", window=64,
                 note="each side's last frame replayed to the other: inside the window, so both "
                 "accept it (InPktsOK, not Late)"),
        Scenario("neg inject-to-both validate=check enc=off", negative="inject-to-both",
                 validate="check", encrypt=False,
                 note="each side's last frame replayed to the other (Late) and a bit-flipped copy "
                 "(integrity only under Check: delivered and counted InPktsInvalid)"),
        Scenario("neg guest-sends-bad", negative="guest-sends-bad",
                 note="guest kernel rewinds its TX PN, then sends with a wrong key"),
        Scenario("mka gcm-aes-128 key-server=peer", mka=True, mka_guest_prio=16, mka_peer_prio=8,
                 note="MKA: guest wpa_supplicant 2.10 (priority 16), host-side peer (priority 8) "
                 "is key server"),
        Scenario("mka gcm-aes-128 key-server=guest", mka=True, mka_guest_prio=16, mka_peer_prio=32,
                 note="MKA: guest wpa_supplicant 2.10 (priority 16) is key server, host-side peer "
                 "(priority 32)"),
        Scenario("mka rekey key-server=peer", mka=True, mka_guest_prio=16, mka_peer_prio=8,
                 rekey=True, note="our key server distributes a new SAK (SIGHUP) during 30 pings "
                 "at 0.1 s: none may be lost, both sides move to the new AN"),
        Scenario("mka restart key-server=guest", mka=True, mka_guest_prio=16, mka_peer_prio=32,
                 restart=True, note="our forwarder is restarted (new MKA participant): the "
                 "guest's wpa_supplicant distributes a new SAK; pings must pass again"),
        Scenario("mka restart key-server=peer", mka=True, mka_guest_prio=16, mka_peer_prio=8,
                 restart=True, note="the same with our restarted forwarder as key server"),
        Scenario("mka guest-restart key-server=guest", mka=True, negative="guest-restart",
                 mka_guest_prio=16, mka_peer_prio=32,
                 note="after the pings the guest's wpa_supplicant (the key server) stops and starts "
                 "again as a new participant while our forwarder keeps running; 10 pings must pass"),
        Scenario("mka guest-restart key-server=peer", mka=True, negative="guest-restart",
                 mka_guest_prio=16, mka_peer_prio=8,
                 note="the same with our running forwarder as key server"),
        Scenario("mka equal-priority key-server=guest", mka=True, mka_guest_prio=16,
                 mka_peer_prio=16, note="both priority 16: the election falls to the lower "
                 "SCI (802.1X 9.5), the guest's; both sides must agree on the order"),
        Scenario("mka cak=256 key-server=guest", mka=True, mka_guest_prio=16, mka_peer_prio=32,
                 cak_len=32, note="MKA with a 256-bit CAK (what `macsec keygen` makes by "
                 "default): ICK, KEK and ICV are AES-CMAC-256 (802.1X-2010 6.2)"),
        Scenario("mka integrity-only window=16 key-server=peer", mka=True, encrypt=False, window=16,
                 mka_guest_prio=16, mka_peer_prio=8,
                 note="MKA with macsec_integ_only=1; the host-side peer distributes the SAK"),
        Scenario("mka key-chain key-server=peer", mka=True, mka_chain=True, mka_guest_prio=16,
                 mka_peer_prio=8, note="ours a key chain ([[mka.keys]]: one key ended in 2020, one "
                 "starting in 2099, the guest's without start or end) against wpa_supplicant with "
                 "its one key: secured on the guest's CKN as with a single key; our counters JSON "
                 "must say so (mka.ckn, mka.keys states)"),
        Scenario("mka vlan=100 key-server=guest", mka=True, vlan=100, mka_guest_prio=16,
                 mka_peer_prio=32, note="MKA over VLAN 100: wpa_supplicant on eth0.100 sends and "
                 "expects tagged MKPDUs; ours with [mka] vlan = 100 and vlan_in_clear = 1"),
    ]
    return res


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")


# --------------------------------------------------------------------------- checks


def expected_drops(scn: Scenario, side: str) -> dict:
    """Counters of bad frames that must have exact values on the receiving side `side`."""
    e = {"InPktsLate": 0, "InPktsNotValid": 0, "InPktsDelayed": 0, "InPktsInvalid": 0}
    # a frame failing validation is dropped (NotValid), except integrity-only frames under
    # validate=check, which are delivered and counted Invalid (802.1AE 10.6.5, Linux)
    bad = "InPktsInvalid" if scn.validate == "check" and not scn.encrypt else "InPktsNotValid"
    if scn.negative in ("inject-to-guest", "inject-to-both") and side == "guest":
        e.update({"InPktsLate": 1, bad: 1})
    if scn.negative in ("inject-to-peer", "inject-to-both", "guest-sends-bad") and side == "peer":
        e.update({"InPktsLate": 1, bad: 1})
    # XPN wrap: the spec notes (4.3) expected Linux to count the first frame after the 2^32
    # crossing as InPktsDelayed; Debian's 6.1 kernel counts it OK, as the standard does.
    return e


def check_side(side: str, c: dict, scn: Scenario, other_tx: int | None, injected: int, exp: dict,
               pn64: bool, min_ok: int | None = None) -> list[str]:
    """Counter checks for one side. other_tx: frames the other side transmitted (its OutPkts),
    None when the two sides' counters do not cover the same SAs (a restarted guest's new
    macsec0). min_ok: the InPktsOK floor (default: the scenario's ping count)."""
    bad = []
    if not c:
        return [f"{side}: no counters"]
    zero = ["InPktsBadTag", "InPktsNoSCI", "InPktsUnknownSCI", "InPktsUntagged",
            "OutPktsTooLong", "OutPktsUntagged", "InPktsInvalid", "InPktsNotUsingSA",
            "InPktsUnusedSA", "InPktsUnchecked"]
    if not scn.mka:  # with MKA, every MKPDU (untagged EAPOL) counts as InPktsNoTag under Strict
        zero.append("InPktsNoTag")
    for k in zero:
        if k not in exp and c.get(k, 0) != 0:
            bad.append(f"{side} {k}={c[k]} (want 0)")
    for k, v in exp.items():
        if c.get(k, 0) != v:
            bad.append(f"{side} {k}={c.get(k, 0)} (want {v})")
    floor = scn.count if min_ok is None else min_ok
    if c.get("InPktsOK", 0) < floor:
        bad.append(f"{side} InPktsOK={c.get('InPktsOK', 0)} (want >= {floor})")
    tx_good, tx_other = ("OutPktsEncrypted", "OutPktsProtected") if scn.encrypt else \
        ("OutPktsProtected", "OutPktsEncrypted")
    if c.get(tx_good, 0) < floor:
        bad.append(f"{side} {tx_good}={c.get(tx_good, 0)} (want >= {floor})")
    if c.get(tx_other, 0) != 0:
        bad.append(f"{side} {tx_other}={c[tx_other]} (want 0)")
    oct_good, oct_other = ("InOctetsDecrypted", "InOctetsValidated") if scn.encrypt else \
        ("InOctetsValidated", "InOctetsDecrypted")
    if c.get(oct_good, 0) <= 0 or c.get(oct_other, 0) != 0:
        bad.append(f"{side} {oct_good}={c.get(oct_good, 0)} {oct_other}={c.get(oct_other, 0)}")
    rx_total = sum(c.get(k, 0) for k in ("InPktsOK", "InPktsDelayed", "InPktsLate",
                                         "InPktsNotValid", "InPktsInvalid", "InPktsUnchecked"))
    if other_tx is not None and rx_total != other_tx + injected:
        bad.append(f"{side} received {rx_total} MACsec frames, the other side sent {other_tx}"
                   f" (+{injected} injected)")
    if scn.wrap and pn64:
        for k in ("tx_pn", "rx_pn"):
            if c.get(k, 0) <= 2**32:
                bad.append(f"{side} {k}={c.get(k, 0):#x}: did not cross 2^32")
    return bad


def guest_restart_result(console: str) -> dict:
    """The "=== NEG wpa-restart k=v ... ===" line of a guest's console, as a dict."""
    for line in console.splitlines():
        m = re.search(r"=== NEG wpa-restart (.*) ===", line)
        if m:
            return dict(w.split("=", 1) for w in m.group(1).split() if "=" in w)
    return {}


def wire_checks(frames: list[bytes], scn: Scenario, g: Endpoint, p: Endpoint, n_clean: int,
                guest_bad: bool) -> tuple[list[str], dict]:
    """Checks on the capture of the guest's tap (both directions). n_clean: number of leading
    frames captured before any injection (PN order is checked on those)."""
    bad: list[str] = []
    info = {"frames": len(frames)}
    for ep in (g, p):
        mine = [(i, f) for i, f in enumerate(frames) if macsec_wire.mac_str(f[6:12]) == ep.mac]
        tags = [(i, macsec_wire.parse(f), f) for i, f in mine]
        clear = [i for i, t, f in tags if t is None
                 and not (scn.mka and macsec_wire.ethertype(f) == 0x888E)]  # MKPDUs are clear
        info[f"{ep.role}_eapol"] = sum(1 for _i, t, f in tags if t is None) - len(clear)
        if clear:
            bad.append(f"wire {ep.role}: {len(clear)} frame(s) not MACsec (EtherType "
                       f"{macsec_wire.ethertype(frames[clear[0]]):#06x})")
        tags = [(i, t, f) for i, t, f in tags if t is not None]
        info[ep.role] = len(tags)
        if len(tags) < scn.count:
            bad.append(f"wire {ep.role}: {len(tags)} MACsec frames captured (want >= {scn.count})")
        errs = set()
        for _i, t, f in tags:
            if t.e != scn.encrypt or t.c != scn.encrypt:
                errs.add(f"E={int(t.e)} C={int(t.c)} with encrypt={scn.encrypt}")
            if t.sc != scn.send_sci:
                errs.add(f"SC={int(t.sc)} with send_sci={scn.send_sci}")
            if t.tci & macsec_wire.TCI_V:
                errs.add(f"TCI {t.tci:#04x} has V set")
            if bool(t.tci & macsec_wire.TCI_ES) != scn.end_station:
                errs.add(f"TCI {t.tci:#04x}: ES={int(bool(t.tci & macsec_wire.TCI_ES))} with "
                         f"end_station={scn.end_station}")
            if bool(t.tci & macsec_wire.TCI_SCB) != scn.scb:
                errs.add(f"TCI {t.tci:#04x}: SCB={int(bool(t.tci & macsec_wire.TCI_SCB))} with "
                         f"scb={scn.scb}")
            if t.an != ep.an and not scn.mka:
                errs.add(f"AN={t.an} (want {ep.an})")
            if t.sci is not None and t.sci.upper() != ep.sci:
                errs.add(f"SCI={t.sci} (want {ep.sci})")
            n = len(f) - t.header_len - 16
            if t.sl != (n if n < 48 else 0):
                errs.add(f"SL={t.sl} for {n} octets of Secure Data")
            if not scn.encrypt and f[t.header_len:t.header_len + 2] not in (b"\x08\x00", b"\x08\x06"):
                errs.add("integrity-only frame does not carry IPv4/ARP in clear")
        for e in sorted(errs):
            bad.append(f"wire {ep.role}: {e}")
        ans: list[int] = []  # the ANs this station used, in order of first use
        for _i, t, _f in tags:
            if not ans or ans[-1] != t.an:
                ans.append(t.an)
        info[f"{ep.role}_ans"] = ans
        if scn.restart or scn.negative == "guest-restart":
            pass  # a new participant: the same AN or another, with a new key
        elif scn.rekey and (len(ans) != 2 or ans[0] == ans[1]):
            bad.append(f"wire {ep.role}: ANs used in order {ans} (want one switch to a new AN "
                       "after the rekey, and never back)")
        elif scn.mka and not scn.rekey and len(ans) != 1:
            bad.append(f"wire {ep.role}: ANs used in order {ans} (want one)")
        pns = [t.pn for i, t, _f in tags if i < n_clean]
        if ep.role == "guest" and guest_bad:
            pass  # the guest deliberately rewinds and jumps its PN
        elif scn.negative == "guest-restart":
            pass  # new SAKs after the restart start again at PN 1 (on the same AN or not)
        elif scn.wrap:
            if 0xFFFFFFFF not in pns or not any(x < 16 for x in pns):
                bad.append(f"wire {ep.role}: 32-bit PN did not wrap (saw {pns[:6]}...)")
            full = []
            hi = 0
            for i, x in enumerate(pns):
                if i and x < pns[i - 1] and pns[i - 1] >= 0x80000000 > x:
                    hi += 1
                full.append((hi << 32) | x)
            if any(b <= a for a, b in zip(full, full[1:])):
                bad.append(f"wire {ep.role}: PNs not increasing across the wrap")
            info[f"{ep.role}_pns"] = f"{pns[0]:#x}..{pns[-1]:#x}" if pns else "-"
        elif scn.rekey:  # per SA (AN): each SA's PNs strictly increasing
            for an in set(ans):
                sa_pns = [t.pn for i, t, _f in tags if i < n_clean and t.an == an]
                if any(b <= a for a, b in zip(sa_pns, sa_pns[1:])):
                    bad.append(f"wire {ep.role}: PNs of AN {an} not strictly increasing")
        elif any(b <= a for a, b in zip(pns, pns[1:])):
            bad.append(f"wire {ep.role}: PNs not strictly increasing")
        if pns and not scn.wrap and not scn.mka and not (ep.role == "guest" and guest_bad) \
                and pns[0] != ep.pn:
            bad.append(f"wire {ep.role}: first PN {pns[0]} (want {ep.pn})")
        if scn.size > 1500:
            big = max((len(f) for _i, _t, f in tags), default=0)
            info[f"{ep.role}_max_len"] = big
            if big < scn.size + 14 + 20 + 8 + 16:
                bad.append(f"wire {ep.role}: largest frame {big} octets, no jumbo frame seen")
    others = [f for f in frames if macsec_wire.mac_str(f[6:12]) not in (g.mac, p.mac)]
    info["other"] = len(others)
    if any(macsec_wire.parse(f) for f in others):
        bad.append("wire: MACsec frame(s) from unknown sources")
    return bad, info


class Tools:
    """Our `macsec pcap decrypt|encrypt` as command templates ({bin} {config} {pcap} {out})."""

    def __init__(self, binary: str, decrypt_cmd: str = DEFAULT_DECRYPT_CMD,
                 encrypt_cmd: str = DEFAULT_ENCRYPT_CMD) -> None:
        self.binary, self.decrypt_cmd, self.encrypt_cmd = binary, decrypt_cmd, encrypt_cmd

    def run(self, op: str, config: str, pcap: str, out: str, log_path: str) -> tuple[dict | None, str]:
        """Runs one pcap operation; returns (its JSON result, error text or "")."""
        tmpl = self.decrypt_cmd if op == "decrypt" else self.encrypt_cmd
        cmd = [w.format(bin=self.binary, config=config, pcap=pcap, out=out) for w in shlex.split(tmpl)]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        with open(log_path, "a") as f:
            f.write(" ".join(shlex.quote(c) for c in cmd) + f"\n# exit {r.returncode}\n{r.stdout}{r.stderr}\n")
        obj = None
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    pass
        if r.returncode != 0:
            return obj, f"pcap {op}: exit {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}"
        return obj, ""


def _write_cfg(path: str, lines: list[str]) -> str:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def _region(f: bytes, i: int) -> str:
    t = macsec_wire.parse(f)
    if i < 12:
        return "MAC addresses"
    if t is None:
        return "EtherType/payload"
    if i < 14:
        return "EtherType"
    if i == 14:
        return "TCI/AN"
    if i == 15:
        return "SL"
    if i < 20:
        return "PN"
    if i < t.header_len:
        return "SCI"
    if i >= len(f) - 16:
        return "ICV"
    return "Secure Data"


def capture_checks(tools: Tools, log_dir: str, frames: list[bytes], n_clean: int, scn: Scenario,
                   g: Endpoint, p: Endpoint, exp_late: int, exp_bad: int,
                   guest_bad: bool) -> tuple[list[str], dict]:
    """Our pcap tool against the capture of the tap (both directions), static keys only:

    1. `macsec pcap decrypt` of the whole capture with an RX SC for each station: every MACsec
       frame is valid except the bad frames of negative scenarios (Late / NotValid exactly as
       the receivers counted them); the output is IPv4/ARP only.
    2. For each station whose frames are all on the capture with consecutive PNs (not the
       guest that rewinds its PN): decrypt its frames alone, then `macsec pcap encrypt` the
       plaintext with its TX SA (SCI, AN, key, first captured PN, flags): the result must be
       its captured frames byte for byte."""
    bad: list[str] = []
    info: dict = {}
    tlog = os.path.join(log_dir, "pcap-tool.log")
    sci_tool = "0200000000990001"  # the tool's own SCI (it transmits nothing here)
    macsec_frames = [f for f in frames if macsec_wire.parse(f)]
    # 1. the whole capture
    cfg = _write_cfg(os.path.join(log_dir, "capture-rx.toml"), secy_config(scn, sci_tool, None, [g, p]))
    out = os.path.join(log_dir, "wire-decrypted.pcap")
    res, err = tools.run("decrypt", cfg, os.path.join(log_dir, "wire.pcap"), out, tlog)
    if err:
        return [err], info
    c = normalize_forwarder(res)
    try:
        plain = macsec_wire.read_pcap(out)
    except (OSError, ValueError) as e:
        return [f"pcap decrypt: no readable output: {e}"], info
    # a frame that fails validation: NotValid (dropped), or with validate=check and integrity
    # only Invalid (delivered)
    bad_key = "InPktsInvalid" if scn.validate == "check" and not scn.encrypt else "InPktsNotValid"
    want_ok = len(macsec_frames) - exp_late - exp_bad
    info["decrypt"] = f"{len(plain)}/{len(macsec_frames)}"
    got = {"InPktsOK": want_ok, "InPktsLate": exp_late, "InPktsNotValid": 0, "InPktsInvalid": 0}
    got[bad_key] = exp_bad
    for k, v in got.items():
        if c.get(k, 0) != v:
            bad.append(f"pcap decrypt of the capture: {k}={c.get(k, 0)} (want {v} of "
                       f"{len(macsec_frames)} MACsec frames)")
    for k in ("InPktsBadTag", "InPktsNoSCI", "InPktsUnknownSCI",
              "InPktsNotUsingSA", "InPktsUnusedSA", "InPktsDelayed"):
        if c.get(k, 0):
            bad.append(f"pcap decrypt of the capture: {k}={c[k]}")
    delivered = c.get("InPktsOK", 0) + c.get("InPktsInvalid", 0)
    if len(plain) != delivered:
        bad.append(f"pcap decrypt: wrote {len(plain)} frames, counted {delivered} OK + Invalid")
    odd = [f for f in plain if macsec_wire.ethertype(f) not in (0x0800, 0x0806)]
    if odd:
        bad.append(f"pcap decrypt: {len(odd)} output frame(s) are not IPv4/ARP")
    # 2. re-encryption, per station
    for ep in (g, p):
        if ep.role == "guest" and guest_bad:
            continue
        mine = [f for f in frames[:n_clean]
                if macsec_wire.mac_str(f[6:12]) == ep.mac and macsec_wire.parse(f)]
        if not mine:
            bad.append(f"re-encrypt {ep.role}: no frames captured")
            continue
        first = macsec_wire.parse(mine[0]).pn
        full = ((ep.pn >> 32) << 32) | first if scn.xpn else first
        if scn.xpn and full < ep.pn:
            full += 2**32
        if full != ep.pn:
            bad.append(f"re-encrypt {ep.role}: first captured PN {full:#x}, configured {ep.pn:#x}"
                       " (frames missing from the capture?)")
            continue
        src = os.path.join(log_dir, f"{ep.role}-frames.pcap")
        macsec_wire.write_pcap(src, mine)
        cfg_rx = _write_cfg(os.path.join(log_dir, f"{ep.role}-rx.toml"), secy_config(scn, sci_tool, None, ep))
        plain_p = os.path.join(log_dir, f"{ep.role}-plain.pcap")
        res, err = tools.run("decrypt", cfg_rx, src, plain_p, tlog)
        if err:
            bad.append(f"re-encrypt {ep.role}: {err}")
            continue
        pl = macsec_wire.read_pcap(plain_p)
        if len(pl) != len(mine):
            bad.append(f"re-encrypt {ep.role}: decrypt gave {len(pl)} of {len(mine)} frames")
            continue
        cfg_tx = _write_cfg(os.path.join(log_dir, f"{ep.role}-tx.toml"), secy_config(scn, ep.sci, ep, None, tx_pn=full))
        again_p = os.path.join(log_dir, f"{ep.role}-reencrypted.pcap")
        res, err = tools.run("encrypt", cfg_tx, plain_p, again_p, tlog)
        if err:
            bad.append(f"re-encrypt {ep.role}: {err}")
            continue
        again = macsec_wire.read_pcap(again_p)
        diffs = [i for i, (x, y) in enumerate(zip(mine, again)) if x != y]
        if len(again) != len(mine):
            bad.append(f"re-encrypt {ep.role}: {len(again)} frames out, {len(mine)} captured")
        if diffs:
            i = diffs[0]
            x, y = mine[i], again[i]
            off = next((k for k in range(min(len(x), len(y))) if x[k] != y[k]), min(len(x), len(y)))
            bad.append(f"re-encrypt {ep.role}: {len(diffs)} of {len(mine)} frames differ; first: "
                       f"frame {i} (PN {macsec_wire.parse(x).pn:#x}), {len(x)} vs {len(y)} octets, "
                       f"first difference at octet {off} ({_region(x, off)}): captured "
                       f"{x[off:off + 4].hex()} ours {y[off:off + 4].hex()}")
        else:
            info[f"reenc_{ep.role}"] = len(mine)
    return bad, info


# --------------------------------------------------------------------------- sessions


class Failure(Exception):
    pass


class Outcome:
    def __init__(self, scn: Scenario) -> None:
        self.scn = scn
        self.ok = False
        self.problems: list[str] = []
        self.guest_c: dict = {}
        self.peer_c: dict = {}
        self.times: dict = {}
        self.wire: dict = {}
        self.diag = ""
        self.boot: float | None = None  # this scenario paid for a session boot (seconds)
        self.mka: dict = {}  # MKA: times to secured, key server views
        self.guest_restart: dict = {}  # guest-restart: the guest's times and pings after it
        self.rekey: dict = {}  # MKA rekey: see HostPeer.rekey_during_pings
        self.tcp: dict = {}  # TCP exchange: both sides' view (and the forwarder's pumps)


class GuestSession:
    """One namespace, the guest VM (booted once) and the host peer's session; runs scenarios
    one after the other. Any failure ends the session (the next scenario gets a fresh one)."""

    counter = 0

    def __init__(self, peer: HostPeer, image: Image, log_root: str, accel: str, deadline: float) -> None:
        GuestSession.counter += 1
        self.n = GuestSession.counter
        self.peer, self.image, self.accel, self.deadline = peer, image, accel, deadline
        self.log_dir = os.path.join(log_root, f"session-{self.n}")
        os.makedirs(self.log_dir, exist_ok=True)
        self.ns = Netns()
        self.guest: Vm | None = None
        self.boot_s: float | None = None
        self.broken = False
        self.tools: Tools | None = None  # our pcap tool, for the capture checks
        self.wire_dump = os.path.join(self.log_dir, "guest-wire.pcap")  # QEMU filter-dump

    def start(self) -> None:
        t0 = time.monotonic()
        self.ns.create()
        make_tap(self.ns, GUEST_TAP, HOST_MTU)
        self.sess = HSession(self.ns, GUEST_TAP, self.image, self.log_dir, self.deadline, self.accel)
        self.peer.start_session(self.sess)
        self.guest = session_vm("guest", self.image, self.ns, GUEST_TAP, "52:54:00:12:34:01",
                                os.path.join(self.log_dir, "guest-console.log"),
                                int(self.deadline - time.monotonic()) + 30, self.accel,
                                dump=self.wire_dump)
        self.guest.start()
        boot_deadline = min(self.deadline, time.monotonic() + 180)
        if self.guest.wait_for(r"=== SESSION READY", boot_deadline) is None:
            raise Failure("guest did not boot (no SESSION READY)")
        if not self.peer.session_ready():
            raise Failure(f"peer ({self.peer.label}) session did not start")
        self.boot_s = time.monotonic() - t0

    def healthy(self) -> bool:
        return not self.broken and bool(self.guest and self.guest.alive()) and self.peer.healthy()

    def close(self) -> None:
        if self.guest:
            self.guest.send_line("poweroff")
        try:
            self.peer.end_session()
        except Exception:  # noqa: BLE001
            pass
        if self.guest:
            self.guest.wait_exit(time.monotonic() + 5)
            self.guest.kill()
        self.ns.delete()

    def run(self, scn: Scenario, timeout_s: int) -> Outcome:
        out = Outcome(scn)
        t0 = time.monotonic()
        deadline = min(self.deadline, t0 + timeout_s)
        log_dir = os.path.join(self.log_dir, slug(scn.name))
        os.makedirs(log_dir, exist_ok=True)
        g, p = scn.endpoints()
        guest, peer = self.guest, self.peer
        assert guest
        cap: WireDump | None = None
        injected = {"guest": 0, "peer": 0}
        evil: list[bytes] = []
        n_clean = 10**9
        gneg = {"guest-sends-bad": "rewind,badkey",
                "guest-restart": "wpa-restart"}.get(scn.negative, "")
        m = guest.mark()
        try:
            # The host side's view, for later `macsec pcap decrypt` / `macsec forward` runs.
            with open(os.path.join(log_dir, "host-side.toml"), "w") as f:
                f.write(forwarder_config(scn, p, g, "veth-plain0", GUEST_TAP))
            cap = WireDump(self.wire_dump, os.path.join(log_dir, "wire.pcap"))
            cap.start()
            run = Run(self.sess, scn, g, p, log_dir, deadline)
            peer.prepare(run)
            m = guest.start_scenario(guest_params(scn, g, p, "guest",
                                                  hold=max(10, int(deadline - time.monotonic())), neg=gneg))
            if guest.wait_for(r"^=== MACSEC READY", deadline, start=m) is None:
                raise Failure("guest: macsec0 not ready")
            if not peer.wait_ready():
                raise Failure(f"peer ({peer.label}) not ready")
            out.times["ready"] = time.monotonic() - t0
            guest.send_line("go")
            peer.on_guest_ready()
            if scn.tcp:
                if guest.wait_for(r"^=== TCP LISTENING", deadline, start=m) is None:
                    raise Failure("guest: not listening for the TCP exchange")
                try:
                    out.tcp["peer"] = peer.tcp_exchange(scn.tcp)
                except subprocess.TimeoutExpired:
                    out.tcp["peer"] = {"error": "timed out"}
            if guest.wait_for(r"^=== TX DONE", deadline, start=m) is None:
                raise Failure("guest: did not finish sending")
            if not peer.wait_tx_done():
                raise Failure(f"peer ({peer.label}) did not finish sending")
            out.times["tx_done"] = time.monotonic() - t0
            if scn.restart:
                n_clean = len(cap.frames())  # PN/AN order is checked before the restart
                rs = peer.restart_and_ping(10)
                out.rekey = rs
                log(f"  restart: secured again after {rs['secured_s'] or 0:.2f}s, first reply after "
                    f"{rs['first_reply_s'] or 0:.2f}s; then {rs['rx']}/{rs['tx']} pings")
                if rs["secured_s"] is None:
                    out.problems.append("restart: the forwarder did not secure again")
                if rs["tx"] != 10 or rs["rx"] != 10:
                    out.problems.append(f"restart: {rs['rx']}/{rs['tx']} pings answered after it")
            if scn.rekey:
                rk = peer.rekey_during_pings(30, 0.1)
                out.rekey = rk
                log(f"  rekey: transmitting with AN {rk['an']} after {rk['secs'] or 0:.2f}s; "
                    f"pings during the rekey {rk['rx']}/{rk['tx']}")
                if rk["an"] is None:
                    out.problems.append("rekey: the peer never transmitted with a new AN")
                if rk["tx"] != 30 or rk["rx"] != rk["tx"]:
                    out.problems.append(f"rekey: {rk['rx']}/{rk['tx']} pings answered during the rekey "
                                        f"(want 30/30: a rekey must not lose frames)")
            if scn.negative in ("inject-to-guest", "inject-to-peer", "inject-to-both",
                                "replay-in-window"):
                time.sleep(0.3)
                frames = cap.frames()
                n_clean = len(frames)

                def last_of(mac: str) -> bytes:
                    sent = [f for f in frames if macsec_wire.mac_str(f[6:12]) == mac and macsec_wire.parse(f)]
                    if not sent:
                        raise Failure(f"nothing from {mac} captured to replay")
                    return sent[-1]
                if scn.negative == "replay-in-window":
                    # the last frame of each side, replayed to the other: inside the replay
                    # window, so both must accept it (802.1AE / Linux: only PNs below the
                    # lowest acceptable PN are late)
                    to_g, to_p = [last_of(p.mac)], [last_of(g.mac)]
                    evil[:] = to_g
                    msg = inject(self.ns, GUEST_TAP, to_g, os.path.join(log_dir, "inject-to-guest.pcap"))
                    msg += "; " + peer.inject(to_p)
                    injected.update(guest=1, peer=1)
                    log(f"  {msg}: the last frame of each side replayed (PN {macsec_wire.parse(to_g[0]).pn}"
                        f" to the guest, PN {macsec_wire.parse(to_p[0]).pn} to the peer)")
                elif scn.negative == "inject-to-both":
                    lp, lg = last_of(p.mac), last_of(g.mac)
                    evil[:] = [lp, macsec_wire.bit_flipped(lp), lg, macsec_wire.bit_flipped(lg)]
                    msg = inject(self.ns, GUEST_TAP, evil[:2], os.path.join(log_dir, "inject-to-guest.pcap"))
                    msg += "; " + peer.inject(evil[2:])
                    injected.update(guest=2, peer=2)
                    log(f"  {msg}: each side's last frame replayed to the other, and a bit-flipped "
                        "copy at PN+1000")
                else:
                    to_guest = scn.negative == "inject-to-guest"
                    last = last_of(p.mac if to_guest else g.mac)
                    evil[:] = [last, macsec_wire.bit_flipped(last)]
                    if to_guest:
                        msg = inject(self.ns, GUEST_TAP, evil, os.path.join(log_dir, "inject-to-guest.pcap"))
                        injected["guest"] = len(evil)
                    else:
                        msg = peer.inject(evil)
                        injected["peer"] = len(evil)
                    log(f"  {msg}: PN {macsec_wire.parse(last).pn} replayed, a bit-flipped copy at PN+1000")
                time.sleep(0.5)
            guest.send_line("release")
            peer.release()
            if guest.wait_for(r"^=== SCENARIO END", deadline, abort="", start=m) is None:
                raise Failure("guest: scenario did not end")
            peer.finish()
            out.times["total"] = time.monotonic() - t0
            time.sleep(0.2)
            cap.stop()
            # ----- evaluation
            res = guest.result(m)
            if res.get("status") != "ok":
                out.problems.append(f"guest: {res.get('reason')}")
            if res.get("released") != "release":
                out.problems.append(f"guest released by {res.get('released')}")
            if int(res.get("pings_rx", 0)) != scn.count:
                out.problems.append(f"guest pings {res.get('pings_rx')}/{res.get('pings_tx')} answered")
            if gneg and res.get("neg_ok") != "1":
                out.problems.append("guest: negative actions did not behave (a bad frame was "
                                    "answered or no recovery)")
            ok, why = peer.status()
            if not ok:
                out.problems.append(why)
            ptx, prx = peer.ping_result()
            if prx != scn.count:
                out.problems.append(f"peer pings {prx}/{ptx} answered")
            out.guest_c = normalize_kernel(guest.counters_json(m))
            out.peer_c = peer.counters()
            gtx = out.guest_c.get("OutPktsEncrypted", 0) + out.guest_c.get("OutPktsProtected", 0)
            ptx_f = out.peer_c.get("OutPktsEncrypted", 0) + out.peer_c.get("OutPktsProtected", 0)
            if scn.restart:
                # wpa_supplicant replaces the RX SC of the restarted peer (a new participant),
                # so the guest's receive counters cover only the frames of the last run
                cur = normalize_forwarder(peer.last_json()) if hasattr(peer, "last_json") else {}
                ptx_f = cur.get("OutPktsEncrypted", 0) + cur.get("OutPktsProtected", 0)
            grestart = scn.negative == "guest-restart"
            if grestart:
                # the guest's counters are those of its new macsec0 only: 10 pings after the
                # restart; ours span both of its participants
                out.guest_restart = guest_restart_result(guest.console(m))
                gr = out.guest_restart
                log(f"  guest restart: secured again after {gr.get('secured_s')}s, first reply after "
                    f"{gr.get('first_reply_s')}s; then {gr.get('pings_rx')}/10 pings")
            out.problems += check_side("guest", out.guest_c, scn, None if grestart else ptx_f,
                                       injected["guest"], expected_drops(scn, "guest"), pn64=False,
                                       min_ok=10 if grestart else None)
            out.problems += check_side("peer", out.peer_c, scn, None if grestart else gtx,
                                       injected["peer"], expected_drops(scn, "peer"),
                                       pn64=peer.pn64)
            frames = cap.frames()
            wbad, out.wire = wire_checks(frames, scn, g, p, n_clean, bool(gneg))
            out.problems += wbad
            out.problems += [f"peer log: {x}" for x in peer.problems_in_log()]
            if scn.tcp:
                out.problems += self._tcp_check(scn, m, out)
            if scn.mka:
                out.mka = self._mka_report(scn, m)
                out.problems += out.mka.pop("problems")
            elif self.tools:  # MKA's SAKs are not known to the driver
                # the bad frames on the capture: the guest's own (guest-sends-bad), or the
                # injected ones that passed the guest's NIC (inject-to-guest)
                late = nv = 1 if gneg else 0
                if evil and scn.negative != "replay-in-window":  # those are accepted
                    after = frames[min(n_clean, len(frames)):]
                    late, nv = after.count(evil[0]), after.count(evil[1])
                    if len(evil) == 4:  # inject-to-both: [to guest x2, to peer x2]
                        late += after.count(evil[2])
                        nv += after.count(evil[3])
                cbad, cinfo = capture_checks(self.tools, log_dir, frames, min(n_clean, len(frames)),
                                             scn, g, p, late, nv, bool(gneg))
                out.problems += cbad
                out.wire.update(cinfo)
            out.ok = not out.problems
        except Failure as e:
            out.problems.append(str(e))
            self._salvage(out, m, deadline)
        except Exception as e:  # noqa: BLE001 - any harness error fails this scenario only
            out.problems.append(f"harness error: {e!r}")
            out.diag += traceback.format_exc()
            self._salvage(out, m, deadline)
        finally:
            out.times.setdefault("total", time.monotonic() - t0)
            if cap:
                cap.stop()
            with open(os.path.join(log_dir, "guest-console.log"), "w") as f:
                f.write(guest.console(m) + "\n")
            if not out.ok:
                self.broken = True
                parts = [out.diag, f"--- guest console (this scenario) ---\n{guest.console(m)}"]
                try:
                    parts.append(peer.diagnostics())
                except Exception as e:  # noqa: BLE001
                    parts.append(f"(peer diagnostics failed: {e!r})")
                out.diag = "\n".join(x for x in parts if x)
            try:
                peer.end_scenario()
            except Exception as e:  # noqa: BLE001
                self.broken = True
                out.problems.append(f"peer cleanup failed: {e!r}")
                out.ok = False
        return out


    def _tcp_check(self, scn: Scenario, m: int, out: Outcome) -> list[str]:
        """Both directions of the TCP exchange arrived whole (bytes and MD5)."""
        assert self.guest
        gt, pt = tcp_done(self.guest.console(m)), out.tcp.get("peer", {})
        out.tcp["guest"] = gt
        out.tcp["pumps"] = self.peer.pump_counters()
        bad = []
        if not gt:
            return ["tcp: the guest reported no TCP DONE"]
        if "error" in pt or not pt:
            return [f"tcp: the peer's side failed: {pt.get('error', 'no result')}"]
        for a, b, what in ((pt, gt, "peer -> guest"), (gt, pt, "guest -> peer")):
            if b.get("recv_bytes") != scn.tcp or b.get("recv_md5") != a.get("sent_md5"):
                bad.append(f"tcp {what}: {b.get('recv_bytes')} of {scn.tcp} bytes arrived, MD5 "
                           f"{b.get('recv_md5')} (sent {a.get('sent_md5')})")
        return bad

    def _mka_report(self, scn: Scenario, m: int) -> dict:
        """MKA: time to secured on both sides, and who is key server in whose view."""
        assert self.guest
        g, p = scn.endpoints()
        r: dict = {"problems": []}
        g0, g1 = self.guest.mka_times(m)
        p0, p1 = self.peer.mka_times()
        if g0 is not None and g1 is not None:
            r["guest_s"] = g1 - g0
        if p0 is not None and p1 is not None:
            r["peer_s"] = p1 - p0
        if None not in (g0, p0):
            both = max(g0, p0)  # from when both were running
            if g1 is not None:
                r["guest_both_s"] = g1 - both
            if p1 is not None:
                r["peer_both_s"] = p1 - both
        # wpa_supplicant's view (wpa_cli status, printed by the guest): who is key server
        ws = wpa_status(self.guest.console(m))
        want_guest = scn.mka_key_server == "guest"
        if "is_key_server" not in ws:
            r["problems"].append("guest: no wpa_cli status (is_key_server) printed")
        else:
            r["guest_is_key_server"] = ws["is_key_server"]
            r["guest_key_server"] = ws.get("key_server")
            if ws["is_key_server"] != want_guest:
                r["problems"].append(f"guest wpa_supplicant: is_key_server={ws['is_key_server']} "
                                     f"(want {want_guest})")
            want_sci = g.sci if want_guest else p.sci
            if ws.get("key_server") != want_sci:
                r["problems"].append(f"guest wpa_supplicant: key_server_sci={ws.get('key_server')} "
                                     f"(want {want_sci})")
        ms = self.peer.mka_status()
        if ms:
            r["peer_is_key_server"] = ms.get("is_key_server")
            r["peer_key_server"] = ms.get("key_server")
            if ms.get("is_key_server") != (not want_guest):
                r["problems"].append(f"peer ({self.peer.label}): is_key_server="
                                     f"{ms.get('is_key_server')} (want {not want_guest})")
        return r

    def _salvage(self, out: Outcome, m: int, deadline: float) -> None:
        """After a failure: let both sides stop waiting and report, to show their counters."""
        assert self.guest
        try:
            self.guest.send_line("go")
            self.guest.send_line("release")
            self.peer.release()
            end = max(deadline, time.monotonic()) + 30  # the guest gives up reaching within 20 s
            self.guest.wait_for(r"^=== SCENARIO END", end, abort="", start=m)
            out.guest_c = normalize_kernel(self.guest.counters_json(m))
            try:
                self.peer.finish()
                out.peer_c = self.peer.counters()
            except Exception:  # noqa: BLE001
                pass
        except Exception:  # noqa: BLE001
            pass


def run_suite(scns: list[Scenario], make_peer, image: Image, log_root: str, timeout_s: int,
              budget_end: float, accel: str, fresh_boot: bool, tools: Tools | None,
              outcomes: list[Outcome], skipped: list[Scenario], boots: list[float]) -> None:
    """Runs the scenarios, appending to outcomes / skipped / boots as it goes (so that an
    interrupted run can still report what it did)."""
    sess: GuestSession | None = None
    try:
        for i, scn in enumerate(scns):
            if time.monotonic() > budget_end:
                skipped.extend(scns[i:])
                return
            log(f"[{i + 1}/{len(scns)}] {scn.name}")
            boot = None
            if sess is None:
                sess = GuestSession(make_peer(), image, log_root, accel, budget_end + timeout_s)
                sess.tools = tools
                try:
                    sess.start()
                    boot = sess.boot_s
                    boots.append(boot or 0)
                    log(f"  session {sess.n} booted in {boot:.1f}s")
                except Exception as e:  # noqa: BLE001
                    o = Outcome(scn)
                    o.problems.append(f"session start failed: {e}")
                    o.diag = f"--- guest console ---\n{sess.guest.console() if sess.guest else ''}"
                    try:
                        o.diag += "\n" + sess.peer.diagnostics()
                    except Exception:  # noqa: BLE001
                        pass
                    outcomes.append(o)
                    sess.close()
                    sess = None
                    continue
            o = sess.run(scn, timeout_s)
            o.boot = boot
            outcomes.append(o)
            log(f"  -> {'PASS' if o.ok else 'FAIL'} in {o.times.get('total', 0):.1f}s"
                + ("" if o.ok else ": " + "; ".join(o.problems)))
            if fresh_boot or not sess.healthy():
                sess.close()
                sess = None
    finally:
        if sess:
            sess.close()

# --------------------------------------------------------------------------- report


def fmt_counters(c: dict) -> str:
    if not c:
        return "-"
    tx = c.get("OutPktsEncrypted", 0) + c.get("OutPktsProtected", 0)
    s = f"ok={c.get('InPktsOK', 0)} tx={tx}"
    for k, short in (("InPktsLate", "late"), ("InPktsNotValid", "notvalid"),
                     ("InPktsDelayed", "delayed"), ("InPktsInvalid", "invalid"),
                     ("InPktsBadTag", "badtag"), ("InPktsNoSCI", "nosci"),
                     ("InPktsNotUsingSA", "notusingsa"), ("InPktsUnknownSCI", "unknownsci"),
                     ("InPktsNoTag", "notag")):
        if c.get(k):
            s += f" {short}={c[k]}"
    return s


def fmt_checks(o: Outcome) -> str:
    """The table's "checks" column: capture checks and MKA results."""
    w, parts = o.wire, []
    if "decrypt" in w:
        parts.append(f"decrypt {w['decrypt']}")
    reenc = [f"{r}={w[f'reenc_{r}']}" for r in ("guest", "peer") if f"reenc_{r}" in w]
    if reenc:
        parts.append("re-encrypt " + ",".join(reenc))
    if o.tcp:
        t = o.tcp.get("guest", {})
        ok = "ok" if o.ok or not any(p.startswith("tcp") for p in o.problems) else "FAILED"
        s = f"tcp {o.scn.tcp // 1024} KiB each way {ok} (guest {t.get('secs', '?')}s)"
        pm = o.tcp.get("pumps", {}).get("plain_to_secure", {})
        if pm:
            s += f", our GSO frames {pm.get('gso_frames', 0)} -> {pm.get('gso_segments', 0)} segments, " \
                 f"checksums completed {pm.get('csum_completed', 0)}"
        parts.append(s)
    if o.guest_restart:
        r = o.guest_restart
        parts.append(f"guest restart: secured again {r.get('secured_s', '?')}s, first reply "
                     f"{r.get('first_reply_s', '?')}s, pings {r.get('pings_rx', '?')}/10")
    if o.rekey and o.scn.restart:
        r = o.rekey
        f = (lambda k: f"{r[k]:.1f}s" if r.get(k) is not None else "never")
        parts.append(f"restart: secured again {f('secured_s')}, first reply {f('first_reply_s')}, "
                     f"pings {r.get('rx')}/{r.get('tx')}, ANs guest {w.get('guest_ans')} peer {w.get('peer_ans')}")
    elif o.rekey:
        parts.append(f"rekey: pings {o.rekey.get('rx')}/{o.rekey.get('tx')}, ANs guest "
                     f"{w.get('guest_ans')} peer {w.get('peer_ans')}")
    if o.mka:
        m = o.mka
        ks = "peer" if m.get("peer_is_key_server") else "guest" if "peer_is_key_server" in m else "?"
        g = f"{m['guest_s']:.1f}" if "guest_s" in m else "?"
        pp = f"{m['peer_s']:.1f}" if "peer_s" in m else "?"
        parts.append(f"KS={ks} secured guest {g}s peer {pp}s")
    return "; ".join(parts) or "-"


def print_table(outcomes: list[Outcome], skipped: list[Scenario], peer_label: str) -> None:
    rows = [("scenario", "result", "boot s", "run s", "guest (kernel) counters",
             f"peer ({peer_label}) counters", "checks")]
    for o in outcomes:
        rows.append((o.scn.name, "PASS" if o.ok else "FAIL", f"{o.boot:.1f}" if o.boot else "-",
                     f"{o.times.get('total', 0):.1f}", fmt_counters(o.guest_c), fmt_counters(o.peer_c),
                     fmt_checks(o)))
    for s in skipped:
        rows.append((s.name, "SKIP", "-", "-", "not run (time budget or interrupted)", "-", "-"))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(x.ljust(w[j]) for j, x in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))


def print_mka(outcomes: list[Outcome], peer_label: str) -> None:
    """Time from start to secured, per MKA scenario, in both sides' view."""
    rows = [o for o in outcomes if o.scn.mka and o.mka]
    if not rows:
        return
    print()
    peer_view = ("process start -> 'MKA: secured' logged" if "forward" in peer_label else
                 "wpa_supplicant start -> TX+RX SA active")
    print(f"MKA time to secured (guest: wpa_supplicant start -> TX+RX SA active; peer "
          f"({peer_label}): {peer_view}; 'both': from when both were running):")
    for o in rows:
        m = o.mka

        def f(k: str) -> str:
            return f"{m[k]:.2f}s" if k in m else "?"
        ks = "peer" if m.get("peer_is_key_server") else "guest"
        print(f"  {o.scn.name:48s} key server {ks:5s}  guest {f('guest_s')} (both {f('guest_both_s')})"
              f"  peer {f('peer_s')} (both {f('peer_both_s')})"
              + f"  (guest wpa_supplicant: is_key_server={m.get('guest_is_key_server', '?')})")


# --------------------------------------------------------------------------- main


def _on_signal(signum, _frame):
    raise SystemExit(f"interrupted by signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=["vm", "forwarder"], default="vm",
                    help="host-side MACsec peer: a second kernel VM (default) or `macsec forward`")
    ap.add_argument("--forwarder-bin", default=os.path.join(HERE, "..", "..", "target", "release", "macsec"),
                    help="the macsec binary for --peer forwarder")
    ap.add_argument("-k", "--only", action="append", default=[],
                    help="run scenarios whose name contains this text (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--log-dir", default="", help="where consoles, captures and configs go "
                    "(default tests/interop/cache/logs/<time>)")
    ap.add_argument("--scenario-timeout", type=int, default=120, help="seconds per scenario")
    ap.add_argument("--budget", type=int, default=840, help="seconds for the whole suite; "
                    "scenarios not started by then are reported as skipped (and fail the run)")
    ap.add_argument("--fresh-boot", action="store_true",
                    help="boot the guest(s) anew for every scenario (slower; default: one boot "
                    "runs scenarios until one fails)")
    ap.add_argument("--accel", choices=["tcg", "kvm"], default="tcg",
                    help="kvm only where /dev/kvm boots stock kernels (not on these machines)")
    ap.add_argument("--captures", choices=["auto", "on", "off"], default="auto",
                    help="check each scenario's capture with our pcap tool (--forwarder-bin): "
                    "decrypt it, and re-encrypt each station's plaintext to its exact frames; "
                    "auto: on with --peer forwarder, off with --peer vm")
    ap.add_argument("--decrypt-captures", action="store_true", help="same as --captures on")
    ap.add_argument("--decrypt-cmd", default=DEFAULT_DECRYPT_CMD,
                    help="command template of the capture checks' decryption; {bin} {config} "
                    "{pcap} {out} are replaced (default: %(default)s)")
    ap.add_argument("--encrypt-cmd", default=DEFAULT_ENCRYPT_CMD,
                    help="command template of the capture checks' encryption (default: %(default)s)")
    ap.add_argument("--quiet-failures", action="store_true", help="do not print consoles of failures")
    a = ap.parse_args()

    scns = all_scenarios()
    if a.only:
        scns = [s for s in scns if any(w in s.name for w in a.only)]
    if a.list:
        for s in scns:
            only = " [forwarder only]" if s.rekey or s.restart or s.mka_chain else ""
            print(f"{s.name:46s} {s.note}{only}")
        return 0
    if not scns:
        print("no scenario selected")
        return 2
    if os.geteuid() != 0:
        print("run.py needs root (network namespaces, taps)", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(cleanup_all)
    t_suite = time.monotonic()
    remove_stale_namespaces()
    image = Image(build_guest.build())
    log(f"guest image: {image.manifest['kernel_package']} ({image.folder})")
    log_root = a.log_dir or os.path.join(HERE, "cache", "logs", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(log_root, exist_ok=True)
    if not a.log_dir:  # keep the default log folder bounded: the last 10 runs
        runs = sorted(os.listdir(os.path.dirname(log_root)))
        for old in runs[:-10]:
            shutil.rmtree(os.path.join(os.path.dirname(log_root), old), ignore_errors=True)
    log(f"logs: {log_root}")
    binary = os.path.abspath(a.forwarder_bin)
    captures = a.decrypt_captures or a.captures == "on" or (a.captures == "auto" and a.peer == "forwarder")
    if (a.peer == "forwarder" or captures) and not os.access(binary, os.X_OK):
        print(f"forwarder binary {binary} not found (build it first)", file=sys.stderr)
        return 2
    if a.peer == "vm":
        make_peer = VmPeer
    else:
        def make_peer():
            return ForwarderPeer(binary)
    tools = Tools(binary, a.decrypt_cmd, a.encrypt_cmd) if captures else None

    peer_cls = VmPeer if a.peer == "vm" else ForwarderPeer
    if not peer_cls.supports_rekey:
        left_out = [s for s in scns if s.rekey or s.restart]
        if left_out:
            log(f"left out (the {a.peer} peer cannot rekey or restart on demand): {', '.join(s.name for s in left_out)}")
        scns = [s for s in scns if not (s.rekey or s.restart)]
    if not peer_cls.supports_key_chain:
        left_out = [s for s in scns if s.mka_chain]
        if left_out:
            log(f"left out (the {a.peer} peer has no key chain): {', '.join(s.name for s in left_out)}")
        scns = [s for s in scns if not s.mka_chain]
    if not peer_cls.supports_mka:
        left_out = [s for s in scns if s.mka]
        if left_out:
            log(f"left out (the {a.peer} peer cannot run MKA yet): {', '.join(s.name for s in left_out)}")
        scns = [s for s in scns if not s.mka]
    t_build = time.monotonic() - t_suite
    outcomes: list[Outcome] = []
    skipped: list[Scenario] = []
    boots: list[float] = []
    interrupted = ""
    try:
        run_suite(scns, make_peer, image, log_root, a.scenario_timeout, t_suite + a.budget,
                  a.accel, a.fresh_boot, tools, outcomes, skipped, boots)
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = str(e) or "interrupted"
        done = {id(o.scn) for o in outcomes}
        skipped[:] = [s for s in scns if id(s) not in done]
    finally:
        cleanup_all()
    total = time.monotonic() - t_suite
    print()
    print_table(outcomes, skipped, "kernel VM" if a.peer == "vm" else "macsec forward")
    print_mka(outcomes, "kernel VM" if a.peer == "vm" else "macsec forward")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n===== FAIL: {o.scn.name}")
        for pr in o.problems:
            print(f"  - {pr}")
        print("  guest counters (non-zero):", {k: v for k, v in o.guest_c.items() if v} or "-")
        print("  peer counters (non-zero): ", {k: v for k, v in o.peer_c.items() if v} or "-")
        if not a.quiet_failures:
            print(o.diag)
    per = [o.times["total"] for o in outcomes if o.times.get("total")]
    print()
    if per:
        print(f"timing: image check/build {t_build:.1f}s; {len(boots)} boot(s), "
              f"avg {sum(boots) / max(1, len(boots)):.1f}s; scenario avg {sum(per) / len(per):.1f}s "
              f"(min {min(per):.1f}, max {max(per):.1f}); whole suite {total:.1f}s")
    print(f"logs: {log_root}")
    if interrupted:
        print(f"run interrupted ({interrupted}): {len(skipped)} scenario(s) not run")
    n_fail = len(failed) + len(skipped)
    print(f"{len(outcomes) - len(failed)} passed, {n_fail} failed")
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
