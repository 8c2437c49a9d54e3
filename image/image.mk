# make image: the controller image (image/README.md).
# target/image/lws.oci.tar, an OCI archive named lws:<workspace version> (docker.io/library/lws
# for containerd): FROM scratch, lws and its glibc libraries (IMAGE_LIBC=musl: a static build
# instead), its module precompiled, user 65532.
IMAGE_VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
IMAGE_LIBC ?= glibc

.PHONY: image image-test

image: $(if $(filter musl,$(IMAGE_LIBC)),wasm,build) ## the controller image as an OCI archive: target/image/lws.oci.tar (prints sizes, digest)
	@IMAGE_VERSION=$(IMAGE_VERSION) IMAGE_LIBC=$(IMAGE_LIBC) CARGO="$(CARGO)" \
	  $(if $(filter musl,$(IMAGE_LIBC)),,LWS_BIN=$(LWS)) bash image/build.sh

image-test: image ## load the image into podman and a throwaway containerd; run it read-only as 65532; time its start
	@IMAGE_VERSION=$(IMAGE_VERSION) bash image/test.sh
