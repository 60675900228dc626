/* Output of the launcher's children (QEMU consoles, device and switch logs)
 * as whole lines with a prefix ("high1| ", "switch sw0| ") on one stream,
 * so the consoles of many VMs stay readable side by side.
 *
 * Bytes are untrusted (a guest writes its console): control characters
 * other than tab become '?', '\r' is dropped, and a line longer than
 * CW_LINES_MAX is cut into pieces of that size. */
#ifndef CAUSEWAY_SYSTEM_LINES_H
#define CAUSEWAY_SYSTEM_LINES_H

#include <stdbool.h>
#include <stddef.h>

#define CW_LINES_MAX 1024
#define CW_LINES_PREFIX_MAX 48

struct cw_lines {
    char prefix[CW_LINES_PREFIX_MAX];
    size_t prefix_len;
    char buf[CW_LINES_MAX];
    size_t len;
    /* Guest consoles: the status of the last "CAUSEWAY-GUEST: exit=N" line
     * (the guest image's /init prints it when its script ends), -1 none. */
    bool scan_guest;
    int guest_exit;
};

void cw_lines_init(struct cw_lines *l, const char *prefix, bool scan_guest);

/* Take n bytes; every completed line goes to out_fd with the prefix. */
void cw_lines_feed(struct cw_lines *l, const char *data, size_t n, int out_fd);

/* Write out a pending partial line (the child has gone). */
void cw_lines_flush(struct cw_lines *l, int out_fd);

/* Read what fd has now (non-blocking) into the lines, at most `budget`
 * bytes. false when fd reached end of file or failed (then the partial line
 * has been flushed). */
bool cw_lines_read(struct cw_lines *l, int fd, int out_fd, size_t budget);

/* The exit status in a guest's "CAUSEWAY-GUEST: exit=N[ ...]" line, or -1. */
int cw_lines_guest_exit(const char *line);

#endif
