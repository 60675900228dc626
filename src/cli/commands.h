#ifndef CAUSEWAY_CLI_COMMANDS_H
#define CAUSEWAY_CLI_COMMANDS_H

int cw_cmd_device(int argc, char **argv);
int cw_cmd_vm(int argc, char **argv);
int cw_cmd_run(int argc, char **argv);
int cw_cmd_stats(int argc, char **argv);
int cw_cmd_switch(int argc, char **argv);
int cw_cmd_check(int argc, char **argv);

#endif
