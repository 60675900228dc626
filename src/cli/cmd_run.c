/* causeway run FILE: load and validate a system description, then launch it
 * (src/system/launcher.c). Any error in the file is reported as
 * FILE:LINE:COL and exits 2 before anything is started. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "../system/description.h"
#include "../system/launcher.h"
#include "../system/spawn.h"

static void run_usage(FILE *f)
{
    fputs("usage: causeway run [--qemu PATH] SYSTEM.json\n"
          "  starts every switch, device process and VM of the system described in\n"
          "  SYSTEM.json; consoles and logs appear on stdout as 'NAME| line'.\n"
          "  Stops on SIGINT/SIGTERM or when every VM has powered off; exits 0 only\n"
          "  if every VM did so cleanly.\n"
          "  --qemu PATH   QEMU binary (default qemu-system-x86_64 from PATH)\n"
          "  see 'causeway stats' for the counters of a running system\n",
          f);
}

int cw_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"qemu", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *qemu_opt = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q': qemu_opt = optarg; break;
        case 'h': run_usage(stdout); return 0;
        default:
            cw_usage_error("run: unknown or incomplete option '%s' (see causeway run --help)",
                           argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        cw_usage_error("run: expected one SYSTEM.json (see causeway run --help)");
    const char *path = argv[optind];

    /* Large (every VM, NIC and rule inline): not for the stack. */
    struct cw_system *sys = calloc(1, sizeof(*sys));
    if (!sys) {
        fprintf(stderr, "causeway: out of memory\n");
        return 1;
    }
    char err[512];
    if (cw_system_load(path, sys, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        free(sys);
        return 2;
    }
    if (cw_launcher_check(sys, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        cw_system_free(sys);
        free(sys);
        return 2;
    }
    char *qemu = cw_find_in_path(qemu_opt ? qemu_opt : "qemu-system-x86_64");
    if (!qemu) {
        fprintf(stderr, "causeway: QEMU '%s' not found (install Debian's qemu-system-x86)\n",
                qemu_opt ? qemu_opt : "qemu-system-x86_64");
        cw_system_free(sys);
        free(sys);
        return 2;
    }
    struct cw_launch_options o = {.qemu = qemu};
    int rc = cw_launcher_run(sys, &o);
    free(qemu);
    cw_system_free(sys);
    free(sys);
    return rc;
}
