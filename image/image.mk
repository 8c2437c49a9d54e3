# make image: the controller image (image/README.md).
