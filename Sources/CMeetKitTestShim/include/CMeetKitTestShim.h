// CMeetKitTestShim — system calls the test-support library and the benchmarks need that
// Swift's Glibc module does not export.
#ifndef CMEETKIT_TEST_SHIM_H
#define CMEETKIT_TEST_SHIM_H

/// Moves the calling thread into the network namespace at `path` (e.g.
/// "/run/netns/NAME"), with setns(2). Returns 0, or -1 with errno set.
int mk_enter_network_namespace(const char *path);

/// Reads up to `count` (at most 64) datagrams waiting on the UDP socket `fd` with one
/// recvmmsg(2) call that does not block: datagram i into `buffers + i * capacity`, its
/// length into `lengths[i]`. Returns how many were read (0 when none waits), or -1 with
/// errno set.
int mk_receive_datagrams(int fd, unsigned char *buffers, int capacity, int count, int *lengths);

#endif
