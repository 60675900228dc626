/* causeway check SYSTEM.json: load and validate a system description with
 * exactly the checks `causeway run` applies, and start nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "../system/description.h"

static void usage(FILE *f)
{
    fputs("usage: causeway check SYSTEM.json\n"
          "Validate a system description and start nothing. Prints\n"
          "'FILE: ok (N VMs, N switches, N rules)' and exits 0, or prints the\n"
          "first error as 'FILE:LINE:COLUMN: message' and exits 2.\n"
          "The policy language is described in docs/POLICY.md.\n",
          f);
}

int cw_cmd_check(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '\0') {
        usage(stderr);
        return 2;
    }
    /* About 100 KiB: on the heap, not the stack. */
    struct cw_system *sys = calloc(1, sizeof(*sys));
    if (!sys) {
        fputs("causeway: out of memory\n", stderr);
        return 2;
    }
    char err[1024];
    if (cw_system_load(argv[1], sys, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        free(sys);
        return 2;
    }
    printf("%s: ok (%u VMs, %u switches, %u rules)\n", argv[1], sys->n_vms, sys->n_switches,
           sys->policy.n_rules);
    cw_system_free(sys);
    free(sys);
    return 0;
}
