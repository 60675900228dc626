/* The switch's side of the launcher protocol's JSON (docs/CONTROL.md):
 * the "config" message into a struct cw_switch, and the "stats" reply out of
 * it. Everything in a message is checked: types, ranges, unknown keys,
 * names that must exist, duplicates; a message with any error changes
 * nothing the caller keeps (it re-initialises the switch). */
#ifndef CAUSEWAY_SWITCH_SWITCH_CONFIG_H
#define CAUSEWAY_SWITCH_SWITCH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "switch.h"

struct cw_switch_names {
    char name[CW_SW_NAME_MAX + 1];
    unsigned n_domains;
    char domains[CW_SW_MAX_DOMAINS][CW_SW_NAME_MAX + 1];
};

/* Apply a {"op":"config",...} message to a switch fresh from
 * cw_switch_init. 0, or -1 with a one-line reason in err (the switch may
 * then be half configured: initialise it again). */
int cw_switch_config_json(struct cw_switch *sw, struct cw_switch_names *names, const json_t *msg,
                          char *err, size_t errlen);

/* The {"op":"stats",...} reply (new reference, NULL on allocation failure). */
json_t *cw_switch_stats_json(const struct cw_switch *sw, const struct cw_switch_names *names,
                             uint64_t now_ms);

#endif
