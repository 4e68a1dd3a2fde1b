/* jailinit: run COMMAND (bwrap) as init of a new PID namespace that dies with PARENT.
 *
 * Why: bwrap 0.8's sandbox process blocks on an eventfd until the outer bwrap has
 * written its uid map, and sets its own PR_SET_PDEATHSIG only after that. When the
 * outer bwrap dies in that window (the bot SIGKILLed), the sandbox process waits
 * forever. Here every process of the jail is inside our PID namespace, whose init
 * (COMMAND, child of this process) gets SIGKILL when we die, and we when PARENT dies;
 * the kernel then kills everything in the namespace. Both death signals are set after
 * the last credential change (which would clear them) and checked against the parent
 * (by pid, or for the init by a pipe), so no moment of the start is left uncovered.
 *
 * usage: jailinit PARENT_PID -- COMMAND [ARG...]; exit 125 when it cannot set up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void die_with(pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
		_exit(125); /* the parent is already gone: it cannot kill us any more */
}

/* In the namespace's init, whose parent (outside) is not nameable: a pipe whose only
 * write end the parent holds; a hang-up means the parent already died. */
static void die_with_pipe(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || poll(&p, 1, 0) != 0)
		_exit(125);
	close(rfd);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* map our own uid and gid into the new user namespace (an unprivileged caller) */
static int map_self(uid_t uid, gid_t gid)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%u %u 1\n", (unsigned)uid, (unsigned)uid);
	if (write_file("/proc/self/uid_map", buf))
		return -1;
	if (write_file("/proc/self/setgroups", "deny\n"))
		return -1;
	snprintf(buf, sizeof(buf), "%u %u 1\n", (unsigned)gid, (unsigned)gid);
	return write_file("/proc/self/gid_map", buf);
}

int main(int argc, char **argv)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	int flags = CLONE_NEWPID;
	pid_t parent, child;
	int status, alive[2];

	if (argc < 4 || strcmp(argv[2], "--") != 0) {
		fprintf(stderr, "usage: jailinit PARENT_PID -- COMMAND [ARG...]\n");
		return 125;
	}
	parent = (pid_t)atol(argv[1]);
	if (geteuid() != 0)
		flags |= CLONE_NEWUSER;
	if (unshare(flags) != 0) {
		fprintf(stderr, "jailinit: unshare(CLONE_NEWPID%s): %s\n",
			flags & CLONE_NEWUSER ? "|CLONE_NEWUSER" : "", strerror(errno));
		return 125;
	}
	if ((flags & CLONE_NEWUSER) && map_self(uid, gid) != 0) {
		fprintf(stderr, "jailinit: cannot map uid %u: %s\n", (unsigned)uid, strerror(errno));
		return 125;
	}
	die_with(parent);
	if (pipe2(alive, O_CLOEXEC) != 0) {
		fprintf(stderr, "jailinit: pipe: %s\n", strerror(errno));
		return 125;
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "jailinit: fork: %s\n", strerror(errno));
		return 125;
	}
	if (child == 0) {
		close(alive[1]);
		die_with_pipe(alive[0]);
		execvp(argv[3], argv + 3);
		fprintf(stderr, "jailinit: cannot run %s: %s\n", argv[3], strerror(errno));
		_exit(127);
	}
	close(alive[0]); /* alive[1] stays open until we die */
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return 125;
	if (WIFSIGNALED(status)) { /* end as it ended, for the caller's classification */
		prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
		signal(WTERMSIG(status), SIG_DFL);
		kill(getpid(), WTERMSIG(status));
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 125;
}
