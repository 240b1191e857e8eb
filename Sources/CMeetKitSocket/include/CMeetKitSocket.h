// CMeetKitSocket — the socket call Swift's Glibc module does not export: recvmmsg(2),
// for a driver that reads many datagrams, with their sources, in one system call.
#ifndef CMEETKIT_SOCKET_H
#define CMEETKIT_SOCKET_H

#include <sys/socket.h>

/// Reads up to `count` (at most 64) datagrams waiting on the UDP socket `fd` with one
/// recvmmsg(2) call that does not block: datagram i into `buffers + i * capacity` (cut to
/// `capacity` bytes if longer), its length into `lengths[i]` and, when `sources` is not
/// NULL, its source address into `sources[i]`. Returns how many were read (0 when none
/// waits), or -1 with errno set.
int mk_receive_datagrams(int fd, unsigned char *buffers, int capacity, int count, int *lengths,
                         struct sockaddr_storage *sources);

#endif
