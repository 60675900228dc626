/* Survive a frontend that shrinks guest memory under the device.
 *
 * Guest regions are files the frontend owns. If it truncates one after the
 * table was accepted (QEMU's memfds are sealed against that, another frontend's
 * may not be), the next access to a vanished page raises SIGBUS. The guard's
 * handler checks that the faulting address lies in a registered guest mapping,
 * puts an anonymous zero page there (so the interrupted copy completes on
 * harmless memory), and trips a flag; the event loop then drops the frontend.
 * A fault anywhere else is a real bug: the handler steps aside and the
 * process dies as it would have. */
#ifndef CAUSEWAY_GMEM_FAULT_GUARD_H
#define CAUSEWAY_GMEM_FAULT_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Install (or re-install) the SIGBUS handler. */
void cw_fault_guard_install(void);
/* Register / forget a guest mapping. -1 if the table is full (the mapping is
 * then unguarded: a fault in it kills the process, as without the guard). */
int cw_fault_guard_add(void *base, size_t len);
void cw_fault_guard_remove(void *base);
/* True once since the last call if a guarded fault happened. */
bool cw_fault_guard_take_tripped(void);

#endif
