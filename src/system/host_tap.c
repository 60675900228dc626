/* TAP uplinks: see host_tap.h. */
#include "host_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int cw_host_tap_open(const char *name, char *err, size_t errlen)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (!name[0] || strlen(name) >= sizeof(ifr.ifr_name)) {
        snprintf(err, errlen, "tap '%s': name empty or longer than %zu", name,
                 sizeof(ifr.ifr_name) - 1);
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "tap '%s': /dev/net/tun: %s", name, strerror(errno));
        return -1;
    }
    memcpy(ifr.ifr_name, name, strlen(name));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    int hdr = 12; /* with num_buffers: the same header every port frame carries */
    /* The switch takes frames with partial checksums and GSO metadata and
     * completes or segments them where a receiver needs it, like the device
     * core does: let the host hand them over unfinished. */
    unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    const char *what = NULL;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        what = "TUNSETIFF";
    else if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
        what = "TUNSETVNETHDRSZ";
    else if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0)
        what = "TUNSETOFFLOAD";
    if (what) {
        snprintf(err, errlen, "tap '%s': %s: %s", name, what, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
