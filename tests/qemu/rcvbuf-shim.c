/*
 * LD_PRELOAD shim for the COLO secondary in `run.sh colo-stuck`: sets
 * SO_RCVBUF (RCVBUF_SHIM_BYTES, default 65536) on every socket QEMU listens
 * on, so the accepted migration socket keeps a small receive buffer.  Linux
 * autotunes a loopback receive buffer to several MB (3.3 MB in our runs),
 * more than a checkpoint, so without this a stopped secondary never closes
 * its TCP window; with it, the checkpoint that is stuck shows the primary
 * filling the window (zero window, window probes) and the window update
 * after SIGCONT.  (The alternative, lowering net.ipv4.tcp_rmem, would change
 * the whole machine.)
 *
 * Build: gcc -shared -fPIC -O2 -o rcvbuf-shim.so rcvbuf-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int listen(int fd, int backlog)
{
    static int (*real_listen)(int, int);
    const char *env = getenv("RCVBUF_SHIM_BYTES");
    int bytes = env ? atoi(env) : 65536;

    if (!real_listen) {
        real_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
    }
    if (bytes > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes)) == 0) {
        fprintf(stderr, "rcvbuf-shim: SO_RCVBUF %d on listening fd %d\n",
                bytes, fd);
    }
    return real_listen(fd, backlog);
}
