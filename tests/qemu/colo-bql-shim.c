/*
 * LD_PRELOAD shim for the COLO primary under TCG (QEMU 7.2), used by run.sh.
 *
 * Why: in QEMU 7.2 colo_do_checkpoint_transaction() calls
 * qemu_savevm_live_state() without the BQL.  Its RAM bitmap sync runs the
 * TCG memory listener tcg_log_global_after_sync(), which calls
 * run_on_cpu(..., do_nothing), which calls
 * qemu_cond_wait(&qemu_work_cond, &qemu_global_mutex) -- pthread_cond_wait()
 * on the BQL, which this thread does not hold.  For a normal (non
 * error-checking) glibc mutex that "releases" the BQL and then re-acquires
 * it on wake-up, so the COLO thread returns owning the BQL without knowing
 * it, and its next qemu_mutex_lock_iothread() (vm_start() after
 * VMSTATE_LOADED) deadlocks on itself; the main loop then blocks on the BQL
 * too and the monitor stops answering.  It only happens when the vCPU thread
 * has not yet run the queued work item when the COLO thread looks, so the
 * stock primary stalls after a random checkpoint (usually the 1st-8th).
 * KVM has no such listener, so only TCG is affected.
 *
 * What: pthread_cond_wait() / pthread_cond_timedwait() called on a normal
 * mutex that the caller does not own first lock the mutex and unlock it
 * again after the wait: the caller then waits exactly as if it had held the
 * BQL around run_on_cpu(), which is what QEMU intends.  Every other call
 * goes straight to glibc.  Nothing else in QEMU is changed.
 *
 * Build: gcc -shared -fPIC -O2 -o colo-bql-shim.so colo-bql-shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *,
                            const struct timespec *);

static wait_fn real_wait;
static timedwait_fn real_timedwait;
static unsigned long fixed;

static void resolve(void)
{
    if (!real_wait) {
        real_wait = (wait_fn)dlvsym(RTLD_NEXT, "pthread_cond_wait",
                                    "GLIBC_2.3.2");
        real_timedwait = (timedwait_fn)dlvsym(RTLD_NEXT,
                                              "pthread_cond_timedwait",
                                              "GLIBC_2.3.2");
        if (!real_wait || !real_timedwait) {
            fprintf(stderr, "colo-bql-shim: cannot find glibc's "
                    "pthread_cond_wait\n");
            abort();
        }
    }
}

static int not_ours(pthread_mutex_t *m)
{
    /* only normal mutexes (kind 0), as QemuMutex uses */
    return m->__data.__kind == 0 &&
           m->__data.__owner != (int)syscall(SYS_gettid);
}

static void note(void)
{
    if (getenv("COLO_BQL_SHIM_VERBOSE")) {
        fprintf(stderr, "colo-bql-shim: cond_wait on a mutex the caller does "
                "not hold (%lu), locking it first\n", ++fixed);
    }
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    resolve();
    if (not_ours(m)) {
        int r;
        note();
        pthread_mutex_lock(m);
        r = real_wait(c, m);
        pthread_mutex_unlock(m);
        return r;
    }
    return real_wait(c, m);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                           const struct timespec *t)
{
    resolve();
    if (not_ours(m)) {
        int r;
        note();
        pthread_mutex_lock(m);
        r = real_timedwait(c, m, t);
        pthread_mutex_unlock(m);
        return r;
    }
    return real_timedwait(c, m, t);
}
