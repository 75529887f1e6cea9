#!/usr/bin/env python3
"""tools/ostree-tree-vectors.py — writes spec/vectors/ostree/trees/: rootfs layers made for the OSTree
export's vectors (spec/ostree.md §6), beside the rootfs vectors they extend.

specials/layer-0.tar: device nodes and FIFOs, which OSTree cannot hold (exported with
--skip-special, so the commit carries cerro.skipped): one FIFO under a directory whose name has a
backslash and one whose name is an escape character, to pin how skipped paths are escaped. A
ustar archive with fixed times and owners, so the bytes never change.
"""
import io
import os
import tarfile

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "vectors", "ostree", "trees")
T = 1700000000


def entry(name, kind, mode, **fields):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime, t.uid, t.gid, t.uname, t.gname = kind, mode, T, 0, 0, "", ""
    for k, v in fields.items():
        setattr(t, k, v)
    return t


def specials(path):
    data = b"vector\n"
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        tf.addfile(entry("dev/", tarfile.DIRTYPE, 0o755))
        tf.addfile(entry("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3))
        tf.addfile(entry("dev/sda", tarfile.BLKTYPE, 0o660, devmajor=8, devminor=0))
        tf.addfile(entry("etc/", tarfile.DIRTYPE, 0o755))
        tf.addfile(entry("etc/hostname", tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
        tf.addfile(entry("odd\\name/", tarfile.DIRTYPE, 0o755))
        tf.addfile(entry("odd\\name/pipe", tarfile.FIFOTYPE, 0o600))
        tf.addfile(entry("run/", tarfile.DIRTYPE, 0o755))
        tf.addfile(entry("run/ctl\x1b", tarfile.FIFOTYPE, 0o600))
        tf.addfile(entry("run/initctl", tarfile.FIFOTYPE, 0o600))


os.makedirs(os.path.join(OUT, "specials"), exist_ok=True)
specials(os.path.join(OUT, "specials", "layer-0.tar"))
