#define _GNU_SOURCE
#include "fault_guard.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Persistent regions (8 per frontend) plus map-per-access's one temporary
 * mapping at a time, with room to spare. Lock-free: the handler may run in
 * the middle of an add or remove on the same thread. */
#define GUARD_SLOTS 32

static struct {
    _Atomic uintptr_t base;
    _Atomic size_t len;
} slots[GUARD_SLOTS];
static atomic_bool tripped;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    uintptr_t addr = (uintptr_t)si->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t b = atomic_load(&slots[i].base);
        size_t l = atomic_load(&slots[i].len);
        if (b && addr >= b && addr - b < l) {
            uintptr_t page = addr & ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
            /* mmap is async-signal-safe in practice (a plain syscall). */
            if (mmap((void *)page, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
                     MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
                atomic_store(&tripped, true);
                return;
            }
            break;
        }
    }
    /* Not guest memory: restore the default action; the access faults again. */
    signal(sig, SIG_DFL);
}

void cw_fault_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

int cw_fault_guard_add(void *base, size_t len)
{
    for (int i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t expect = 0;
        /* Claim with a placeholder so len is written before base is seen. */
        if (atomic_compare_exchange_strong(&slots[i].base, &expect, (uintptr_t)1)) {
            atomic_store(&slots[i].len, len);
            atomic_store(&slots[i].base, (uintptr_t)base);
            return 0;
        }
    }
    return -1;
}

void cw_fault_guard_remove(void *base)
{
    for (int i = 0; i < GUARD_SLOTS; i++) {
        if (atomic_load(&slots[i].base) == (uintptr_t)base) {
            atomic_store(&slots[i].len, 0);
            atomic_store(&slots[i].base, 0);
            return;
        }
    }
}

bool cw_fault_guard_take_tripped(void)
{
    /* Asked after every round of the data path: a plain load first, the
     * locked exchange only in the rare case the guard fired. */
    return atomic_load_explicit(&tripped, memory_order_relaxed) && atomic_exchange(&tripped, false);
}
