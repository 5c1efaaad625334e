#!/usr/bin/env python3
"""Checks that a Linux binary starts on the Functions host's images: every versioned glibc
symbol it needs is at most --max-glibc, and every shared library it needs is in the base image.
Reads the ELF file itself (no readelf needed). Prints the highest version; exits 1 when not."""
import argparse, struct, sys

# Shared libraries of glibc itself and libgcc, present in every Debian-based Functions image.
BASE_IMAGE = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
    "ld-linux-x86-64.so.2", "libgcc_s.so.1", "libutil.so.1",
}


def parse(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF":
        return None, [], []
    if data[4] != 2 or data[5] != 1:
        raise SystemExit(f"{path}: only 64-bit little-endian ELF is checked")
    (e_shoff,) = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        name, sh_type, _, _, sh_offset, sh_size, sh_link, sh_info, _, sh_entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, off)
        sections.append(dict(name=name, type=sh_type, offset=sh_offset, size=sh_size,
                             link=sh_link, info=sh_info, entsize=sh_entsize))

    def string(table, offset):
        start = sections[table]["offset"] + offset
        return data[start:data.index(b"\0", start)].decode()

    needed, versions = [], []
    for s in sections:
        if s["type"] == 6:  # SHT_DYNAMIC: DT_NEEDED entries name shared libraries
            for j in range(s["size"] // 16):
                tag, val = struct.unpack_from("<qQ", data, s["offset"] + j * 16)
                if tag == 0:
                    break
                if tag == 1:
                    needed.append(string(s["link"], val))
        if s["type"] == 0x6FFFFFFE:  # SHT_GNU_verneed: versions needed per library
            off = s["offset"]
            for _ in range(s["info"]):
                _, vn_cnt, vn_file, vn_aux, vn_next = struct.unpack_from("<HHIII", data, off)
                aux = off + vn_aux
                for _ in range(vn_cnt):
                    _, _, _, vna_name, vna_next = struct.unpack_from("<IHHII", data, aux)
                    versions.append((string(s["link"], vn_file), string(s["link"], vna_name)))
                    aux += vna_next
                off += vn_next
                if vn_next == 0:
                    break
    return True, needed, versions


def version_key(v):
    return tuple(int(x) for x in v.split("_", 1)[1].split(".") if x.isdigit())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-glibc", required=True)
    ap.add_argument("binary")
    args = ap.parse_args()
    elf, needed, versions = parse(args.binary)
    if elf is None:
        print(f"{args.binary}: not an ELF file", file=sys.stderr)
        return 1
    glibc = sorted({v for _, v in versions if v.startswith("GLIBC_") and v[6:7].isdigit()},
                   key=version_key)
    highest = glibc[-1] if glibc else "none"
    limit = version_key("GLIBC_" + args.max_glibc)
    failures = [f"needs {v} (from {lib})" for lib, v in versions
                if v.startswith("GLIBC_") and v[6:7].isdigit() and version_key(v) > limit]
    failures += [f"needs {lib}, which the base image does not have" for lib in needed
                 if lib not in BASE_IMAGE]
    print(f"{args.binary}: highest glibc symbol version {highest}; libraries {', '.join(needed) or 'none (static)'}")
    if failures:
        print(f"{args.binary} will not start on a Functions image with glibc {args.max_glibc}:",
              file=sys.stderr)
        for f in sorted(set(failures)):
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
