/* causeway: the command. Each subcommand lives in its own file. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *f)
{
    fputs("usage: causeway COMMAND [OPTIONS]\n"
          "commands:\n"
          "  device   serve one virtio-net device over vhost-user (one per VM NIC)\n"
          "  vm       start a VM (QEMU) wired to its Causeway device process(es)\n"
          "  run      start a system of VMs, switches and uplinks from a JSON file\n"
          "  stats    counters of a running system (per VM NIC and switch port)\n"
          "  switch   the isolating switch of a system (started by the launcher)\n"
          "  check    validate a system description (JSON) and start nothing\n"
          "  version  print the version\n"
          "run 'causeway COMMAND --help' for a command's options\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "device"))
        return cw_cmd_device(argc - 1, argv + 1);
    if (!strcmp(cmd, "vm"))
        return cw_cmd_vm(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cw_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats"))
        return cw_cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "switch"))
        return cw_cmd_switch(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cw_cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        puts("causeway " CAUSEWAY_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "causeway: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
