/* bench-stack's kernel reference (kernel_ref.c): Linux TCP over loopback,
 * one thread, non-blocking sockets. */
#ifndef BENCH_STACK_KERNEL_REF_H
#define BENCH_STACK_KERNEL_REF_H

/* Bulk throughput of one connection with 1 MiB writes, Gbit/s (-1 on error). */
double kernel_bulk_gbps(double seconds);
/* 1-byte ping-pong round trips per second over `conns` connections (-1 on error). */
double kernel_pingpong_rate(int conns, double seconds);

#endif
