#define _GNU_SOURCE
#include "CMeetKitTestShim.h"
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

int mk_enter_network_namespace(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    close(fd);
    return rc;
}
