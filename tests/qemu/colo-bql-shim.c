/*
 * LD_PRELOAD shim for the COLO primary under TCG (QEMU 7.2), used by run.sh.
 *
 * The bug: in QEMU 7.2 colo_do_checkpoint_transaction() calls
 * qemu_savevm_live_state() without the BQL.  Its RAM bitmap sync
 * (ram_save_complete -> migration_bitmap_sync ->
 * memory_global_after_dirty_log_sync) runs the TCG memory listener
 * tcg_log_global_after_sync(), which calls run_on_cpu(cpu, do_nothing) once
 * per CPU address space (2 on x86: memory and SMM).  run_on_cpu() queues a
 * work item, kicks the vCPU (broadcast on its halt_cond) and waits with
 * qemu_cond_wait(&qemu_work_cond, &qemu_global_mutex) -- all of it assuming
 * the caller holds the BQL.  Without it two things go wrong, at random:
 *  1. pthread_cond_wait() on the BQL that the thread does not hold: glibc
 *     (normal mutex) "releases" it and re-acquires it on wake-up, so the COLO
 *     thread comes back owning the BQL without knowing it; its next
 *     qemu_mutex_lock_iothread() (vm_start() after VMSTATE_LOADED) deadlocks
 *     on itself, the main loop blocks on the BQL too, the monitor goes dead.
 *     Trace: last colo_* line on the primary is "Receive 'vmstate-loaded'".
 *  2. the kick is a lost wake-up: the halted vCPU thread checks its work list
 *     under the BQL and then waits on halt_cond; a broadcast from a thread
 *     that does not hold the BQL can fall between the two, and the vCPU
 *     sleeps on with the work item queued, so run_on_cpu() never returns.
 *     Trace: last colo_* line on the primary is "Send 'vmstate-send'".
 * Both only happen when the vCPU thread has not run the work item by the
 * time the COLO thread looks, so the stock primary stops after a random
 * checkpoint (1st..8th in our runs).  KVM has no such listener.
 *
 * The shim: pthread_cond_wait()/pthread_cond_timedwait() called on a normal
 * mutex that the caller does NOT own (only this COLO path does that) lock the
 * mutex, broadcast every condition variable that has been waited on with that
 * mutex (so a lost kick is repeated; QEMU's waits all loop on their
 * predicate, so extra wake-ups are harmless), wait at most 5 ms, unlock and
 * return (a spurious wake-up; do_run_on_cpu() loops until its work item is
 * done).  Every other call goes straight to glibc, after remembering which
 * mutex the condition variable is used with.  Nothing else in QEMU changes;
 * the effect is that of holding the BQL around run_on_cpu(), which is what
 * QEMU intends.
 *
 * Build: gcc -shared -fPIC -O2 -o colo-bql-shim.so colo-bql-shim.c -ldl
 * COLO_BQL_SHIM_VERBOSE=1 prints a line each time the shim steps in.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *,
                            const struct timespec *);

static wait_fn real_wait;
static timedwait_fn real_timedwait;
static unsigned long stepped_in;

#define MAX_KNOWN 512
static struct { pthread_cond_t *c; pthread_mutex_t *m; } known[MAX_KNOWN];
static int n_known;
static pthread_mutex_t known_lock = PTHREAD_MUTEX_INITIALIZER;

static void resolve(void)
{
    if (!real_wait) {
        real_timedwait = (timedwait_fn)dlvsym(RTLD_NEXT,
                                              "pthread_cond_timedwait",
                                              "GLIBC_2.3.2");
        real_wait = (wait_fn)dlvsym(RTLD_NEXT, "pthread_cond_wait",
                                    "GLIBC_2.3.2");
        if (!real_wait || !real_timedwait) {
            fprintf(stderr, "colo-bql-shim: cannot find glibc's "
                    "pthread_cond_wait\n");
            abort();
        }
    }
}

static void remember(pthread_cond_t *c, pthread_mutex_t *m)
{
    int i;

    pthread_mutex_lock(&known_lock);
    for (i = 0; i < n_known; i++) {
        if (known[i].c == c) {
            known[i].m = m;
            break;
        }
    }
    if (i == n_known && n_known < MAX_KNOWN) {
        known[n_known].c = c;
        known[n_known].m = m;
        n_known++;
    }
    pthread_mutex_unlock(&known_lock);
}

static int not_ours(pthread_mutex_t *m)
{
    /* only normal mutexes (kind 0), which is what QemuMutex uses */
    return m->__data.__kind == 0 &&
           m->__data.__owner != (int)syscall(SYS_gettid);
}

/* called with m locked: wake everybody who waits with m */
static void kick_all(pthread_mutex_t *m)
{
    pthread_cond_t *list[MAX_KNOWN];
    int i, n = 0;

    pthread_mutex_lock(&known_lock);
    for (i = 0; i < n_known; i++) {
        if (known[i].m == m) {
            list[n++] = known[i].c;
        }
    }
    pthread_mutex_unlock(&known_lock);
    for (i = 0; i < n; i++) {
        pthread_cond_broadcast(list[i]);
    }
}

static int step_in(pthread_cond_t *c, pthread_mutex_t *m)
{
    struct timespec ts;
    int r;

    if (getenv("COLO_BQL_SHIM_VERBOSE")) {
        fprintf(stderr, "colo-bql-shim: cond_wait on a mutex the caller does "
                "not hold (%lu), holding it for the wait\n", ++stepped_in);
    }
    pthread_mutex_lock(m);
    kick_all(m);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 5 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    r = pthread_cond_clockwait(c, m, CLOCK_MONOTONIC, &ts);
    pthread_mutex_unlock(m);
    return r == 0 || r == ETIMEDOUT ? 0 : r;
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    resolve();
    if (not_ours(m)) {
        return step_in(c, m);
    }
    remember(c, m);
    return real_wait(c, m);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                           const struct timespec *t)
{
    resolve();
    if (not_ours(m)) {
        return step_in(c, m);
    }
    remember(c, m);
    return real_timedwait(c, m, t);
}
