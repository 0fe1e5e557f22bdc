# tests/ip6: IPv6 under `usnet run --ip6` against the kernel across a veth
# (afxdp, afpacket, a router namespace) and a TAP: ping, Neighbor Discovery
# and Duplicate Address Detection (tests/ip6/run.sh).
TEST_SUITES += tests/ip6/run.sh
