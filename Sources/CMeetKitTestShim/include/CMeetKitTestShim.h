// CMeetKitTestShim — system calls the test-support library needs that Swift's Glibc
// module does not export.
#ifndef CMEETKIT_TEST_SHIM_H
#define CMEETKIT_TEST_SHIM_H

/// Moves the calling thread into the network namespace at `path` (e.g.
/// "/run/netns/NAME"), with setns(2). Returns 0, or -1 with errno set.
int mk_enter_network_namespace(const char *path);

#endif
