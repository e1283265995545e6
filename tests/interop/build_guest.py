#!/usr/bin/env python3
"""Build the interop guest: Debian 12's kernel plus a small initramfs.

Everything comes from Debian 12 packages fetched with `apt-get download` and unpacked with
`dpkg-deb -x`; nothing is taken from the host's own filesystem. The result lands in
tests/interop/cache/ (gitignored), keyed on the exact package versions and on the contents of
the guest files, so a rebuild happens only when one of those changes:

    cache/debs/                      downloaded .deb files (reused across builds)
    cache/base-<key>/                the package part: vmlinuz, base.cpio.gz, manifest.json;
                                     key = package versions + this builder
    cache/image-<key>/vmlinuz        the kernel (a hard link to the base's)
    cache/image-<key>/initramfs.cpio.gz   base.cpio.gz + a cpio of guest/ (init.sh -> /init)
    cache/image-<key>/manifest.json  packages, versions, module list, binaries
    cache/current -> image-<key>     the last image built

Python 3 stdlib only. Run as root (apt-get update may be needed) on Debian 12:
    python3 tests/interop/build_guest.py [--force] [--print-path]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("INTEROP_CACHE", os.path.join(HERE, "cache"))
GUEST_DIR = os.path.join(HERE, "guest")

# Bump when the layout of the image changes in a way the inputs below do not capture.
BUILDER_VERSION = "1"

# Packages that carry the programs; their shared-library dependencies are added by walking
# Depends/Pre-Depends through packages named lib* (Debian's shared-library convention).
ROOT_PACKAGES = ["busybox-static", "iproute2", "tcpdump", "wpasupplicant", "iputils-ping"]
# Library packages whose names do not start with lib.
LIB_PACKAGES_OTHER = {"zlib1g"}
KERNEL_META = "linux-image-amd64"  # depends on linux-image-6.1.0-N-amd64, the current ABI

# Dynamic binaries to copy into the guest, by their path inside the unpacked packages.
BINARIES = [
    "bin/ip",
    "usr/bin/tcpdump",
    "sbin/wpa_supplicant",
    "sbin/wpa_cli",
    "bin/ping",
]
# Extra names for them inside the guest (busybox would otherwise answer to some of them).
BINARY_LINKS = {"sbin/ip": "/bin/ip", "usr/sbin/tcpdump": "/usr/bin/tcpdump"}

# Modules to load in the guest; their dependency closure is added from modules.dep.
MODULES = [
    "virtio_pci", "virtio_net", "virtio_console", "virtio_rng",
    "macsec", "gcm", "ctr", "ghash_generic", "aesni_intel", "ghash_clmulni_intel", "cmac",
    "8021q",
]

LIB_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"]


def log(msg: str) -> None:
    print(f"[build-guest] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kw)


def out(cmd: list[str]) -> str:
    return run(cmd, stdout=subprocess.PIPE).stdout


# --------------------------------------------------------------------------- apt


def apt_candidate(pkgs: list[str]) -> dict[str, str]:
    """Candidate versions for pkgs (empty string where apt knows no candidate)."""
    text = out(["apt-cache", "policy", *pkgs])
    res: dict[str, str] = {}
    cur = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            cur = line[:-1]
        elif cur and line.strip().startswith("Candidate:"):
            v = line.split(":", 1)[1].strip()
            res[cur] = "" if v == "(none)" else v
    return res


_apt_updated = False


def ensure_apt_lists() -> None:
    global _apt_updated
    if apt_candidate([KERNEL_META]).get(KERNEL_META):
        return
    if _apt_updated:
        raise SystemExit("apt knows no candidate for linux-image-amd64 even after apt-get update")
    log("apt package lists missing: apt-get update")
    run(["apt-get", "update", "-q"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    _apt_updated = True


def apt_deps(pkgs: list[str]) -> dict[str, list[str]]:
    """Direct Depends/Pre-Depends of each package (first alternative, real packages only)."""
    text = out(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", *pkgs])
    res: dict[str, list[str]] = {}
    cur = None
    alt = False  # the previous line was an alternative ("|Depends"): skip the next one
    for line in text.splitlines():
        if line and not line[0].isspace():
            cur = line.strip()
            res.setdefault(cur, [])
            alt = False
            continue
        m = re.match(r"\s*(\|)?(Pre)?Depends:\s*(\S+)", line)
        if not m or cur is None:
            continue
        skip = alt
        alt = bool(m.group(1))
        if not skip and not m.group(3).startswith("<"):
            res[cur].append(m.group(3))
    return res


def kernel_package() -> str:
    want = os.environ.get("INTEROP_KERNEL_PKG")
    if want:
        return want
    for d in apt_deps([KERNEL_META]).get(KERNEL_META, []):
        if re.fullmatch(r"linux-image-6\.1\.0-\d+-amd64", d):
            return d
    raise SystemExit(f"cannot find the kernel package behind {KERNEL_META}")


def package_closure() -> dict[str, str]:
    """{package: version} for everything the guest is built from."""
    kpkg = kernel_package()
    seen: set[str] = set(ROOT_PACKAGES)
    level = list(ROOT_PACKAGES)
    while level:  # one apt-cache call per level of the dependency graph
        nxt = []
        for deps in apt_deps(level).values():
            for d in deps:
                if (d.startswith("lib") or d in LIB_PACKAGES_OTHER) and d not in seen:
                    seen.add(d)
                    nxt.append(d)
        level = nxt
    pkgs = sorted(seen | {kpkg})
    vers = apt_candidate(pkgs)
    missing = [p for p in pkgs if not vers.get(p)]
    if missing:
        raise SystemExit(f"apt has no candidate for: {' '.join(missing)}")
    return {p: vers[p] for p in pkgs}


def deb_path(pkg: str, ver: str) -> str:
    # apt-get download names files pkg_version_arch.deb with ':' in the version escaped as %3a
    ver_q = ver.replace(":", "%3a")
    debs = os.path.join(CACHE, "debs")
    for arch in ("amd64", "all"):
        p = os.path.join(debs, f"{pkg}_{ver_q}_{arch}.deb")
        if os.path.exists(p):
            return p
    return ""


def download(pkgs: dict[str, str]) -> dict[str, str]:
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    need = [f"{p}={v}" for p, v in pkgs.items() if not deb_path(p, v)]
    if need:
        log(f"apt-get download {len(need)} package(s)")
        run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", *need], cwd=debs,
            stdout=sys.stderr)
    paths = {p: deb_path(p, v) for p, v in pkgs.items()}
    bad = [p for p, d in paths.items() if not d]
    if bad:
        raise SystemExit(f"download did not produce: {bad}")
    return paths


# --------------------------------------------------------------------------- ELF


def elf_needed(path: str) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF file ([] if static or not ELF)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    e_phoff, = struct.unpack_from("<Q", data, 0x20)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 0x36)
    loads = []
    dyn = None
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        p_type, _flags, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from("<IIQQQQ", data, off)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dyn = (p_offset, p_filesz)
    if dyn is None:
        return []
    entries = []
    strtab = None
    for j in range(0, dyn[1], 16):
        tag, val = struct.unpack_from("<qQ", data, dyn[0] + j)
        if tag == 0:
            break
        if tag == 5:
            strtab = val
        entries.append((tag, val))

    def v2o(vaddr: int) -> int:
        for va, off, sz in loads:
            if va <= vaddr < va + sz:
                return vaddr - va + off
        raise ValueError(f"{path}: vaddr {vaddr:#x} not in a PT_LOAD")

    if strtab is None:
        return []
    base = v2o(strtab)
    res = []
    for tag, val in entries:
        if tag == 1:
            end = data.index(b"\0", base + val)
            res.append(data[base + val:end].decode())
    return res


def resolve_in_tree(tree: str, rel: str, depth: int = 0) -> str:
    """Follow symlinks of tree/rel inside the tree (absolute targets are tree-relative)."""
    if depth > 40:
        raise RuntimeError(f"symlink loop at {rel}")
    parts = rel.strip("/").split("/")
    cur = ""
    for i, part in enumerate(parts):
        nxt = f"{cur}/{part}" if cur else part
        full = os.path.join(tree, nxt)
        if os.path.islink(full):
            target = os.readlink(full)
            if target.startswith("/"):
                base = target.lstrip("/")
            else:
                base = os.path.normpath(os.path.join(os.path.dirname(nxt), target))
            rest = "/".join(parts[i + 1:])
            return resolve_in_tree(tree, f"{base}/{rest}" if rest else base, depth + 1)
        cur = nxt
    return cur


def find_lib(tree: str, name: str) -> str:
    for d in LIB_DIRS:
        rel = f"{d}/{name}"
        if os.path.lexists(os.path.join(tree, rel)):
            return rel
    raise SystemExit(f"shared library {name} not found in the unpacked packages")


# --------------------------------------------------------------------------- cpio


class Cpio:
    """Writer for the 'newc' cpio format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _hdr(self, name: str, mode: int, size: int, nlink: int = 1) -> None:
        nameb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(nameb), 0]
        self.ino += 1
        h = b"070701" + b"".join(b"%08X" % x for x in fields)
        self.buf.write(h + nameb)
        self.buf.write(b"\0" * ((4 - (len(h) + len(nameb)) % 4) % 4))

    def _data(self, data: bytes) -> None:
        self.buf.write(data)
        self.buf.write(b"\0" * ((4 - len(data) % 4) % 4))

    def mkdir(self, name: str) -> None:
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self.mkdir(os.path.dirname(name))
        self.dirs.add(name)
        self._hdr(name, stat.S_IFDIR | 0o755, 0, 2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        self.mkdir(os.path.dirname(name))
        self._hdr(name, stat.S_IFREG | mode, len(data))
        self._data(data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        self.mkdir(os.path.dirname(name))
        t = target.encode()
        self._hdr(name, stat.S_IFLNK | 0o777, len(t))
        self._data(t)

    def nod(self, name: str, mode: int, major: int, minor: int) -> None:
        name = name.strip("/")
        self.mkdir(os.path.dirname(name))
        nameb = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, 0, 0, 0, major, minor, len(nameb), 0]
        self.ino += 1
        h = b"070701" + b"".join(b"%08X" % x for x in fields)
        self.buf.write(h + nameb)
        self.buf.write(b"\0" * ((4 - (len(h) + len(nameb)) % 4) % 4))

    def finish(self) -> bytes:
        self._hdr("TRAILER!!!", 0, 0)
        data = self.buf.getvalue()
        return data + b"\0" * ((512 - len(data) % 512) % 512)


# --------------------------------------------------------------------------- build


def guest_files() -> dict[str, bytes]:
    res = {}
    for name in sorted(os.listdir(GUEST_DIR)):
        with open(os.path.join(GUEST_DIR, name), "rb") as f:
            res[name] = f.read()
    return res


def base_key(pkgs: dict[str, str]) -> str:
    """Key of the package part of the image: the package versions and this builder."""
    h = hashlib.sha256()
    h.update(f"builder={BUILDER_VERSION}\n".encode())
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
    for p, v in sorted(pkgs.items()):
        h.update(f"{p}={v}\n".encode())
    return h.hexdigest()[:16]


def image_key(bkey: str) -> str:
    """Key of the whole image: the base plus the guest scripts."""
    h = hashlib.sha256(bkey.encode())
    for name, data in guest_files().items():
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]


def module_closure(tree: str, kver: str) -> list[str]:
    """The modules to ship, dependencies before their users (the guest insmods in this order)."""
    moddir = os.path.join(tree, "lib/modules", kver)
    run(["depmod", "-b", tree, kver])
    deps: dict[str, list[str]] = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
    by_name = {}
    for path in deps:
        base = os.path.basename(path)
        base = re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base).replace("-", "_")
        by_name[base] = path
    with open(os.path.join(moddir, "modules.builtin")) as f:
        builtin = {re.sub(r"\.ko$", "", os.path.basename(x.strip())).replace("-", "_") for x in f}
    res: list[str] = []

    def visit(p: str, depth: int = 0) -> None:
        if p in res or depth > 50:
            return
        for d in deps[p]:
            visit(d, depth + 1)
        res.append(p)

    for m in MODULES:
        if m in by_name:
            visit(by_name[m])
        elif m not in builtin:
            raise SystemExit(f"module {m} is neither a module nor built in to {kver}")
    return res


def build(force: bool = False) -> str:
    """Build (or reuse) the image; returns its folder (vmlinuz, initramfs.cpio.gz, manifest)."""
    ensure_apt_lists()
    pkgs = package_closure()
    bkey = base_key(pkgs)
    base = os.path.join(CACHE, f"base-{bkey}")
    if force or not os.path.exists(os.path.join(base, "manifest.json")):
        build_base(pkgs, bkey, base)
    img = os.path.join(CACHE, f"image-{image_key(bkey)}")
    if force or not os.path.exists(os.path.join(img, "manifest.json")):
        assemble(base, img)
    _link_current(img)
    _prune(base, img)
    return img


def assemble(base: str, img: str) -> None:
    """image = base (packages) + a second cpio archive with the guest scripts appended; the
    kernel unpacks concatenated archives in order, so editing guest/ rebuilds in a moment."""
    cp = Cpio()
    cp.dirs.update({"etc", "etc/interop"})  # exist in the base archive
    for name, data in guest_files().items():
        if name == "init.sh":
            cp.file("init", data, 0o755)
        else:
            cp.file(f"etc/interop/{name}", data, 0o755)
    tmp = img + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "initramfs.cpio.gz"), "wb") as f:
        with open(os.path.join(base, "base.cpio.gz"), "rb") as b:
            shutil.copyfileobj(b, f)
        f.write(gzip.compress(cp.finish(), compresslevel=6, mtime=0))
    try:
        os.link(os.path.join(base, "vmlinuz"), os.path.join(tmp, "vmlinuz"))
    except OSError:
        shutil.copy2(os.path.join(base, "vmlinuz"), os.path.join(tmp, "vmlinuz"))
    with open(os.path.join(base, "manifest.json")) as f:
        manifest = json.load(f)
    manifest["base"] = os.path.basename(base)
    manifest["guest_files"] = sorted(guest_files())
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    shutil.rmtree(img, ignore_errors=True)
    os.rename(tmp, img)


def build_base(pkgs: dict[str, str], key: str, img: str) -> None:
    """Download, unpack and pack the package part of the initramfs into img (base-<key>)."""
    t0 = time.monotonic()
    debs = download(pkgs)
    os.makedirs(CACHE, exist_ok=True)
    work = tempfile.mkdtemp(prefix="tree-", dir=CACHE)
    try:
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        log(f"unpacking {len(debs)} packages")
        for p, d in sorted(debs.items()):
            run(["dpkg-deb", "-x", d, tree])
        kpkg = next(p for p in pkgs if p.startswith("linux-image-"))
        kver = kpkg[len("linux-image-"):]
        cp = Cpio()
        for d in ["bin", "sbin", "usr/bin", "usr/sbin", "lib", "etc", "proc", "sys", "dev", "tmp",
                  "run", "root", "var/run", "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]:
            cp.mkdir(d)
        cp.nod("dev/console", stat.S_IFCHR | 0o600, 5, 1)
        cp.nod("dev/null", stat.S_IFCHR | 0o666, 1, 3)
        cp.nod("dev/ttyS0", stat.S_IFCHR | 0o600, 4, 64)
        # busybox: /bin/sh for /init; the other applets get linked at boot (busybox --install -s
        # leaves existing files alone, so Debian's ip, ping, ... stay what they are).
        with open(os.path.join(tree, "bin/busybox"), "rb") as f:
            cp.file("bin/busybox", f.read(), 0o755)
        cp.symlink("bin/sh", "busybox")
        # Dynamic binaries and their libraries.
        libs: dict[str, str] = {}  # name -> tree-relative real path
        todo: list[str] = []
        manifest_bins = []
        for b in BINARIES:
            real = resolve_in_tree(tree, b)
            with open(os.path.join(tree, real), "rb") as f:
                cp.file(b, f.read(), 0o755)
            manifest_bins.append(b)
            todo.extend(elf_needed(os.path.join(tree, real)))
        for link, target in BINARY_LINKS.items():
            cp.symlink(link, target)
        todo.append("ld-linux-x86-64.so.2")
        while todo:
            name = todo.pop()
            if name in libs:
                continue
            rel = find_lib(tree, name)
            real = resolve_in_tree(tree, rel)
            libs[name] = real
            todo.extend(elf_needed(os.path.join(tree, real)))
        for name, real in sorted(libs.items()):
            with open(os.path.join(tree, real), "rb") as f:
                cp.file(f"lib/x86_64-linux-gnu/{name}", f.read(), 0o755)
        cp.mkdir("lib64")
        cp.symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        # Kernel modules: the closure, then depmod over the staged module tree.
        mods = module_closure(tree, kver)
        stage = os.path.join(work, "modstage")
        src_mod = os.path.join(tree, "lib/modules", kver)
        dst_mod = os.path.join(stage, "lib/modules", kver)
        for m in mods:
            os.makedirs(os.path.dirname(os.path.join(dst_mod, m)), exist_ok=True)
            shutil.copy2(os.path.join(src_mod, m), os.path.join(dst_mod, m))
        for f in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            shutil.copy2(os.path.join(src_mod, f), os.path.join(dst_mod, f))
        run(["depmod", "-b", stage, kver])
        cp.file("etc/interop/modules.load", "".join(m + "\n" for m in mods).encode())
        for root, _dirs, files in os.walk(stage):
            for fn in sorted(files):
                full = os.path.join(root, fn)
                with open(full, "rb") as f:
                    cp.file(os.path.relpath(full, stage), f.read())
        cp.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        cp.file("etc/group", b"root:x:0:\n")
        raw = cp.finish()
        tmpimg = img + ".tmp"
        shutil.rmtree(tmpimg, ignore_errors=True)
        os.makedirs(tmpimg)
        with open(os.path.join(tmpimg, "base.cpio.gz"), "wb") as f:
            f.write(gzip.compress(raw, compresslevel=6, mtime=0))
        shutil.copy2(os.path.join(tree, "boot", f"vmlinuz-{kver}"), os.path.join(tmpimg, "vmlinuz"))
        manifest = {
            "key": key,
            "kernel_package": kpkg,
            "kernel_release": kver,
            "packages": pkgs,
            "binaries": manifest_bins,
            "libraries": sorted(libs),
            "modules": mods,
            "initramfs_bytes_uncompressed": len(raw),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(os.path.join(tmpimg, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
        shutil.rmtree(img, ignore_errors=True)
        os.rename(tmpimg, img)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"built {img} in {time.monotonic() - t0:.1f}s")


def _link_current(img: str) -> None:
    cur = os.path.join(CACHE, "current")
    tmp = cur + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(os.path.basename(img), tmp)
    os.replace(tmp, cur)


def _prune(base: str, img: str) -> None:
    """Drop older bases/images and .debs no longer referenced (the cache stays bounded)."""
    for name in os.listdir(CACHE):
        full = os.path.join(CACHE, name)
        if (name.startswith("image-") or name.startswith("base-")) and full not in (base, img) \
                and os.path.isdir(full):
            shutil.rmtree(full, ignore_errors=True)
    with open(os.path.join(base, "manifest.json")) as f:
        pkgs = json.load(f)["packages"]
    wanted = {os.path.basename(deb_path(p, v)) for p, v in pkgs.items()}
    debs = os.path.join(CACHE, "debs")
    for name in os.listdir(debs):
        if name.endswith(".deb") and name not in wanted:
            os.unlink(os.path.join(debs, name))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    ap.add_argument("--print-path", action="store_true", help="print the image folder on stdout")
    a = ap.parse_args()
    if os.geteuid() != 0:
        log("warning: not root; apt-get update/download may fail")
    img = build(force=a.force)
    if a.print_path:
        print(img)
    else:
        with open(os.path.join(img, "manifest.json")) as f:
            m = json.load(f)
        log(f"image {img}: kernel {m['kernel_package']}, {len(m['packages'])} packages, "
            f"{len(m['modules'])} modules, initramfs {m['initramfs_bytes_uncompressed'] // 1024} KiB raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
