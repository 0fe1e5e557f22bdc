/*
 * usnet — what kind of program `usnet run`/`usnet trace` start, and how the
 * hook can reach it (program_kind.c).
 */
#ifndef USNET_CLI_PROGRAM_KIND_H
#define USNET_CLI_PROGRAM_KIND_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum program_kind_id {
	PROGRAM_DYNAMIC = 0,   /* has an interpreter: LD_PRELOAD reaches it */
	PROGRAM_STATIC,        /* ET_EXEC without an interpreter */
	PROGRAM_STATIC_PIE,    /* ET_DYN without an interpreter */
	PROGRAM_FOREIGN,       /* not an x86-64 ELF (32-bit, another machine) */
};

struct program_kind {
	enum program_kind_id kind;
	bool script;           /* started through #!: kind is the interpreter's */
	bool secure;           /* set-user-ID/-group or file capabilities: the
	                        * dynamic loader ignores LD_PRELOAD for it */
	char path[PATH_MAX];   /* the program, found on PATH */
	char judged[PATH_MAX]; /* the file the kind is of (the interpreter of a script) */
};

/* Finds NAME as execvp would and says what it is: 0, or -errno (not found,
 * unreadable) with nothing decided. */
int program_kind_of(const char *name, struct program_kind *pk);

/* "statically linked", ... for one-line messages. */
const char *program_kind_name(enum program_kind_id k);

/* usnet-exec, the loader of static programs: next to the running usnet, or
 * $USNET_EXEC.  0, or -errno. */
int program_exec_path(char *out, size_t cap);

/* Whether static programs can be hooked here; else false with the reason. */
bool program_static_supported(char *why, size_t cap);

/* How `usnet TOOL` starts argv (the program and its arguments): unchanged
 * for a dynamic program; through usnet-exec for a static one (hook_env,
 * the variable naming the hook mode, is set to sud); anything the hook
 * cannot reach gets one line on stderr, or with strict is refused.  0 with
 * the argv to exec in *exec_argv, or the exit status after the line. */
int program_route(const char *tool, char **argv, bool strict, const char *hook_env, char ***exec_argv);

#endif
