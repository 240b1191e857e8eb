#define _GNU_SOURCE
#include "CMeetKitSocket.h"
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

int mk_receive_datagrams(int fd, unsigned char *buffers, int capacity, int count, int *lengths,
                         struct sockaddr_storage *sources) {
    struct mmsghdr messages[64];
    struct iovec vectors[64];
    if (count > 64) count = 64;
    if (count <= 0 || capacity <= 0) return 0;
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = buffers + (size_t)i * (size_t)capacity;
        vectors[i].iov_len = (size_t)capacity;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (sources) {
            messages[i].msg_hdr.msg_name = &sources[i];
            messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        }
    }
    int n = recvmmsg(fd, messages, (unsigned int)count, MSG_DONTWAIT, NULL);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (int i = 0; i < n; i++) lengths[i] = (int)messages[i].msg_len;
    return n;
}
