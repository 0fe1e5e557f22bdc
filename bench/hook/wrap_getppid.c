/* bench/hook: the familiar baseline, a libc-symbol LD_PRELOAD wrapper. */

#include <dlfcn.h>
#include <unistd.h>

static pid_t (*real_getppid)(void);
static unsigned long calls;

pid_t getppid(void)
{
	if (!real_getppid)
		real_getppid = (pid_t (*)(void))dlsym(RTLD_NEXT, "getppid");
	calls++;
	return real_getppid();
}
