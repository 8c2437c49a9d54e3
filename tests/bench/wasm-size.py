#!/usr/bin/env python3
"""Where lws.wasm's code bytes go, by crate and by function. Needs a module built with its
name section (CARGO_PROFILE_WASM_STRIP=false). Usage: wasm-size.py MODULE [TOP]"""

import collections
import re
import sys


def leb(data, i):
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def functions(data):
    i, imports, bodies, names = 8, 0, [], {}
    while i < len(data):
        section = data[i]
        size, i = leb(data, i + 1)
        end = i + size
        if section == 2:
            imports, _ = leb(data, i)
        elif section == 10:
            count, j = leb(data, i)
            for _ in range(count):
                body, j = leb(data, j)
                bodies.append(body)
                j += body
        elif section == 0:
            length, j = leb(data, i)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    sub = data[j]
                    sub_size, j = leb(data, j + 1)
                    sub_end = j + sub_size
                    if sub == 1:
                        count, j = leb(data, j)
                        for _ in range(count):
                            index, j = leb(data, j)
                            length, j = leb(data, j)
                            names[index] = data[j:j + length].decode("utf8", "replace")
                            j += length
                    j = sub_end
        i = end
    return [(size, names.get(index + imports, "?")) for index, size in enumerate(bodies)]


def main():
    data = open(sys.argv[1], "rb").read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    funcs = functions(data)
    total = sum(size for size, _ in funcs)
    by_crate = collections.Counter()
    for size, name in funcs:
        found = re.findall(r"(k8s_openapi|lws_core|serde_path_to_error|serde_json|serde_core|alloc|core)", name)
        by_crate[found[0] if found else "other"] += size
    print(f"code: {total} bytes in {len(funcs)} functions")
    for crate, size in by_crate.most_common():
        print(f"  {crate:22s} {size:9d} {100 * size / total:5.1f}%")
    for size, name in sorted(funcs, reverse=True)[:top]:
        print(f"{size:8d} {name[:140]}")


if __name__ == "__main__":
    main()
