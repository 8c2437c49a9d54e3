#!/usr/bin/env python3
"""Writes an OCI image layout of one layer (image/build.sh; image/README.md).

    oci.py LAYOUT LAYER_TAR CONFIG_JSON NAME TAG

LAYER_TAR is the uncompressed root filesystem tar; CONFIG_JSON holds the image config's `config`
object plus `created` and `annotations` (set as config labels and manifest annotations alike).
The index names the manifest twice over: `io.containerd.image.name` = NAME (what containerd's
`ctr import` and docker load use as the image's name) and `org.opencontainers.image.ref.name` =
TAG (the tag, as the image layout spec means it). Prints the manifest digest, the config digest
(the image id) and the layer's uncompressed size.
"""

import gzip
import hashlib
import json
import os
import shutil
import sys


def write_blob(layout, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def main():
    layout, layer_tar, config_json, name, tag = sys.argv[1:]
    settings = json.load(open(config_json))
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    layer = open(layer_tar, "rb").read()
    # mtime=0 and no file name: the same tree gives the same compressed bytes.
    compressed = gzip.compress(layer, compresslevel=9, mtime=0)
    layer_descriptor = write_blob(layout, compressed)
    layer_descriptor["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"

    annotations = settings["annotations"]
    config = {
        "created": settings["created"],
        "architecture": "amd64",
        "os": "linux",
        "config": dict(settings["config"], Labels=annotations),
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created": settings["created"], "created_by": settings["created_by"]}],
    }
    config_descriptor = write_blob(layout, canonical(config))
    config_descriptor["mediaType"] = "application/vnd.oci.image.config.v1+json"

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_descriptor,
        "layers": [layer_descriptor],
        "annotations": annotations,
    }
    manifest_descriptor = write_blob(layout, canonical(manifest))
    manifest_descriptor["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest_descriptor["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    }
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_descriptor],
    }
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical(index))
    print(manifest_descriptor["digest"], config_descriptor["digest"], len(layer))


if __name__ == "__main__":
    main()
