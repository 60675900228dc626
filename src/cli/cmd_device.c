/* causeway device: parse options, then hand over to the device loop. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "commands.h"
#include "device_loop.h"
#include "options.h"
#include "../port/port.h"
#include "../util/fds.h"

static void device_usage(FILE *f)
{
    fputs("usage: causeway device --socket PATH [options]\n"
          "  --socket PATH          vhost-user socket to listen on (required)\n"
          "  --link PATH            join the peer device at this rendezvous socket\n"
          "  --gmem STRATEGY        persistent (default) or map-per-access\n"
          "  --mac MAC              the NIC's address (for logs and counters)\n"
          "  --mtu N                offer VIRTIO_NET_F_MTU with N (68..65535)\n"
          "  --offloads on|off      offer checksum/TSO/ECN offloads (default on)\n"
          "  --mrg-rxbuf on|off     offer mergeable RX buffers (default on)\n"
          "  --ring-size SIZE       port ring bytes per direction (default 1M)\n"
          "  --name NAME            name used in log lines\n"
          "  --event-fd N           write link/readiness events to fd N\n"
          "  --control-fd N         launcher mode: take ports from the launcher's control\n"
          "                         socket N (docs/CONTROL.md) instead of --link\n"
          "  --sched batch|normal   CPU scheduling class (default batch: a woken device\n"
          "                         does not preempt a busy neighbour; docs/PERFORMANCE.md)\n"
          "  --busy-poll auto|USEC  after traffic, keep polling this long before arming\n"
          "                         notifications and sleeping (0: never; at most 1000000).\n"
          "                         auto (default): 100 us, opened only by a wake-up that\n"
          "                         found a batch (32 frames); idle always sleeps\n"
          "                         (docs/PERFORMANCE.md)\n"
          "  --no-sandbox           debugging only: run without the sandbox (seccomp\n"
          "                         allowlist, no capabilities; docs/ARCHITECTURE.md)\n",
          f);
}

int cw_cmd_device(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},   {"link", required_argument, NULL, 'l'},
        {"gmem", required_argument, NULL, 'g'},     {"mac", required_argument, NULL, 'm'},
        {"mtu", required_argument, NULL, 'u'},      {"offloads", required_argument, NULL, 'o'},
        {"mrg-rxbuf", required_argument, NULL, 'r'}, {"ring-size", required_argument, NULL, 'R'},
        {"name", required_argument, NULL, 'n'},     {"event-fd", required_argument, NULL, 'e'},
        {"control-fd", required_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
        {"no-sandbox", no_argument, NULL, 'S'}, {"sched", required_argument, NULL, 'P'},
        {"busy-poll", required_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    struct cw_device_config cfg = {
        .name = "net0",
        .ring_capacity = CW_PORT_DEFAULT_CAPACITY,
        .gmem = CW_GMEM_PERSISTENT,
        .net = {.mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, .offloads = true, .mrg_rxbuf = true},
        .event_fd = -1,
        .control_fd = -1,
        .busy_poll = CW_BUSY_AUTO,
    };
    uint64_t v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': cfg.socket_path = optarg; break;
        case 'l': cfg.link_path = optarg; break;
        case 'n': cfg.name = optarg; break;
        case 'g':
            if (cw_gmem_strategy_parse(optarg, &cfg.gmem))
                cw_usage_error("--gmem: '%s' is not persistent or map-per-access", optarg);
            break;
        case 'm':
            if (cw_parse_mac(optarg, cfg.net.mac))
                cw_usage_error("--mac: '%s' is not a unicast MAC like 52:54:00:00:00:01", optarg);
            break;
        case 'u':
            if (cw_parse_uint(optarg, 68, CW_NET_MAX_MTU, &v))
                cw_usage_error("--mtu: '%s' is not a number from 68 to 65535", optarg);
            cfg.net.mtu = (uint16_t)v;
            break;
        case 'o':
            if (cw_parse_onoff(optarg, &cfg.net.offloads))
                cw_usage_error("--offloads: '%s' is not on or off", optarg);
            break;
        case 'r':
            if (cw_parse_onoff(optarg, &cfg.net.mrg_rxbuf))
                cw_usage_error("--mrg-rxbuf: '%s' is not on or off", optarg);
            break;
        case 'R':
            if (cw_parse_size(optarg, &v) || v > UINT32_MAX || !cw_port_capacity_valid((uint32_t)v))
                cw_usage_error("--ring-size: '%s' is not a power of two from 256K to 1G", optarg);
            cfg.ring_capacity = (uint32_t)v;
            break;
        case 'e':
            if (cw_parse_uint(optarg, 3, 1 << 20, &v) || fcntl((int)v, F_GETFD) < 0)
                cw_usage_error("--event-fd: '%s' is not an open file descriptor", optarg);
            cfg.event_fd = (int)v;
            break;
        case 'C':
            if (cw_parse_control_fd(optarg, &cfg.control_fd))
                cw_usage_error("--control-fd: '%s' is not an open SEQPACKET socket", optarg);
            break;
        case 'S': cfg.no_sandbox = true; break;
        case 'B':
            if (cw_busy_parse(optarg, &cfg.busy_poll))
                cw_usage_error("--busy-poll: '%s' is not auto or microseconds from 0 to 1000000",
                               optarg);
            break;
        case 'P':
            if (cw_sched_parse(optarg, &cfg.sched) < 0)
                cw_usage_error("device: --sched '%s': expected batch or normal", optarg);
            break;
        case 'h': device_usage(stdout); return 0;
        default:
            cw_usage_error("device: unknown or incomplete option '%s' (see causeway device --help)",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        cw_usage_error("device: unexpected argument '%s'", argv[optind]);
    if (!cfg.socket_path)
        cw_usage_error("device: --socket PATH is required");
    if (cfg.link_path && cfg.control_fd >= 0)
        cw_usage_error("device: --link and --control-fd exclude each other "
                       "(with --control-fd the launcher gives the port)");
    /* Keep only stdio and the fds we were given: anything else inherited
     * (another VM's memory or sockets, leaked by whoever started us) must
     * not become a capability of this device. */
    int keep[] = {0, 1, 2, cfg.event_fd, cfg.control_fd};
    if (cw_fds_close_except(keep, sizeof(keep) / sizeof(keep[0])) < 0) {
        fprintf(stderr, "causeway device: cannot close inherited fds: %s\n", strerror(errno));
        return 1;
    }
    return cw_device_run(&cfg);
}
