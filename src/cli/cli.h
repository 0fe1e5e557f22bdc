/*
 * usnet — the commands of the `usnet` front end.  Each lives in its own file
 * (cmd_run.c, cmd_trace.c, ...) and is declared weak here so that a build
 * without one still links and says so.  argv[0] is the command's name.
 */
#ifndef USNET_CLI_H
#define USNET_CLI_H

int cli_run_main(int argc, char **argv) __attribute__((weak));
int cli_trace_main(int argc, char **argv) __attribute__((weak));
int cli_stat_main(int argc, char **argv) __attribute__((weak));
int cli_demo_main(int argc, char **argv) __attribute__((weak));
int cli_owner_main(int argc, char **argv) __attribute__((weak));
int cli_doctor_main(int argc, char **argv) __attribute__((weak));

#endif
