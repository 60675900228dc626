/* causeway switch: parse options, then hand over to the switch loop. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../switch/switch.h"
#include "../switch/switch_loop.h"
#include "commands.h"
#include "options.h"
#include "../util/fds.h"

static void switch_usage(FILE *f)
{
    fputs("usage: causeway switch --name NAME --control-fd N [options]\n"
          "  --name NAME            the switch's name (in log lines; the config must match)\n"
          "  --control-fd N         SOCK_SEQPACKET socket to the launcher (required;\n"
          "                         protocol: docs/CONTROL.md)\n"
          "  --budget N             frames per port per round (1..4096, default 64)\n"
          "  --fdb-aging SECONDS    forget learned addresses after this (1..86400, default 300)\n"
          "  --sched batch|normal   CPU scheduling class (default batch; docs/PERFORMANCE.md)\n"
          "  --busy-poll auto|USEC  after traffic, keep polling the ports this long before\n"
          "                         sleeping (0: never; at most 1000000; auto, the default:\n"
          "                         100 us once a wake-up found a batch of 32 frames)\n"
          "  --no-sandbox           debugging only: do not enter the seccomp sandbox\n"
          "The launcher (causeway run) starts switches; this command is not meant to be\n"
          "run by hand.\n",
          f);
}

int cw_cmd_switch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},      {"control-fd", required_argument, NULL, 'c'},
        {"budget", required_argument, NULL, 'b'},    {"fdb-aging", required_argument, NULL, 'a'},
        {"no-sandbox", no_argument, NULL, 'S'},      {"help", no_argument, NULL, 'h'},
        {"sched", required_argument, NULL, 'P'},     {"busy-poll", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    struct cw_switch_opts o = {.name = NULL, .control_fd = -1, .busy_poll = CW_BUSY_AUTO};
    uint64_t v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (optarg[0] == '\0' || strlen(optarg) > CW_SW_NAME_MAX)
                cw_usage_error("--name: must be 1 to %u characters", CW_SW_NAME_MAX);
            o.name = optarg;
            break;
        case 'c':
            if (cw_parse_control_fd(optarg, &o.control_fd))
                cw_usage_error("--control-fd: '%s' is not an open SEQPACKET socket", optarg);
            break;
        case 'b':
            if (cw_parse_uint(optarg, 1, 4096, &v))
                cw_usage_error("--budget: '%s' is not a number from 1 to 4096", optarg);
            o.budget = (uint32_t)v;
            break;
        case 'a':
            if (cw_parse_uint(optarg, 1, 86400, &v))
                cw_usage_error("--fdb-aging: '%s' is not a number of seconds from 1 to 86400",
                               optarg);
            o.fdb_aging_ms = (uint32_t)v * 1000u;
            break;
        case 'S': o.no_sandbox = true; break;
        case 'B':
            if (cw_busy_parse(optarg, &o.busy_poll))
                cw_usage_error("--busy-poll: '%s' is not auto or microseconds from 0 to 1000000",
                               optarg);
            break;
        case 'P':
            if (cw_sched_parse(optarg, &o.sched) < 0)
                cw_usage_error("switch: --sched '%s': expected batch or normal", optarg);
            break;
        case 'h': switch_usage(stdout); return 0;
        default:
            cw_usage_error("switch: unknown or incomplete option '%s' (see causeway switch --help)",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        cw_usage_error("switch: unexpected argument '%s'", argv[optind]);
    if (!o.name)
        cw_usage_error("switch: --name NAME is required");
    if (o.control_fd < 0)
        cw_usage_error("switch: --control-fd N is required");
    /* Hold nothing inherited but the launcher's socket and stdio. */
    cw_fds_close_except((int[]){0, 1, 2, o.control_fd}, 4);
    return cw_switch_main(&o);
}
