# tests/net6: the stack over IPv6 against the Linux kernel (root): usnet-nc
# on a TAP whose other side, in a private namespace, is the kernel's peer and
# router.  The suite drives build/usnet-nc (apps/usnet-nc/build.mk); it
# builds nothing of its own.
TEST_SUITES += tests/net6/run.sh
