# tests/host: usnet beside the kernel on one interface (tests/host/run.sh):
# the kernel's own address keeps answering ARP, ping and TCP while usnet
# moves data on the same interface.  Its programs are python scripts.
TEST_SUITES += tests/host/run.sh
