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
 * Started as root (-u UID:GID), it never lets the jail keep host uid 0: after
 * unshare(CLONE_NEWPID|CLONE_NEWNS) it stages each -b PATH (read-only binds at STAGE/0,
 * STAGE/1, ... on a private tmpfs of mode 0711 mounted at -s STAGE, in its own mount
 * namespace), so the unprivileged uid reaches exactly those paths even under a 0700
 * /root, then drops to UID:GID (setgroups(0), setresgid, setresuid, in that order;
 * a failure ends it, never a run as root) and only then sets the death signals; bwrap
 * then runs unprivileged in a user namespace of its own.
 *
 * usage: jailinit PARENT_PID [-u UID:GID [-s STAGE [-b PATH]...]] -- COMMAND [ARG...];
 * exit 125 when it cannot set up.
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <grp.h>
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

/* the read-only bind of PATH at STAGE/INDEX (an empty directory or file made for it) */
static int stage_one(const char *stage, int index, const char *path)
{
	static const struct { unsigned long vfs, ms; } keep[] = {
		{ ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
		{ ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME },
		{ ST_RELATIME, MS_RELATIME },
	};
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
	char dst[4096];
	struct statvfs vfs;
	struct stat st;
	size_t i;
	int fd;

	if (snprintf(dst, sizeof(dst), "%s/%d", stage, index) >= (int)sizeof(dst) ||
	    stat(path, &st) != 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dst, 0711) != 0)
			return -1;
	} else {
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (mount(path, dst, NULL, MS_BIND | MS_REC, NULL) != 0 || statvfs(dst, &vfs) != 0)
		return -1;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (vfs.f_flag & keep[i].vfs)
			flags |= keep[i].ms;
	return mount(NULL, dst, NULL, flags, NULL);
}

/* as root: the staging tmpfs in a mount namespace of our own (nothing reaches the host) */
static int stage_paths(const char *stage, char **paths, int n)
{
	int i;

	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0) {
		fprintf(stderr, "jailinit: cannot make / a slave mount: %s\n", strerror(errno));
		return -1;
	}
	if (mount("mmuci-stage", stage, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=0711,size=64k,nr_inodes=4096") != 0) {
		fprintf(stderr, "jailinit: cannot mount the staging tmpfs at %s: %s\n", stage,
			strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++)
		if (stage_one(stage, i, paths[i]) != 0) {
			fprintf(stderr, "jailinit: cannot stage %s: %s\n", paths[i], strerror(errno));
			return -1;
		}
	return 0;
}

/* root -> to_uid:to_gid for good: no supplementary groups, real, effective and saved ids */
static int drop_to(uid_t to_uid, gid_t to_gid)
{
	if (setgroups(0, NULL) != 0 || setresgid(to_gid, to_gid, to_gid) != 0 ||
	    setresuid(to_uid, to_uid, to_uid) != 0) {
		fprintf(stderr, "jailinit: cannot drop to uid %u gid %u: %s\n", (unsigned)to_uid,
			(unsigned)to_gid, strerror(errno));
		return -1;
	}
	if (to_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		fprintf(stderr, "jailinit: uid 0 could be regained after the drop\n");
		return -1;
	}
	if (chdir("/") != 0) /* the caller's cwd may be a directory only root can enter */
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	uid_t uid = getuid(), to_uid = 0;
	gid_t gid = getgid(), to_gid = 0;
	int flags = CLONE_NEWPID, drop = 0, nbind = 0, cmd;
	char *stage = NULL, **binds;
	pid_t parent, child;
	int status, alive[2];
	unsigned u, g;
	char end;

	if (argc < 4)
		goto usage;
	parent = (pid_t)atol(argv[1]);
	binds = calloc((size_t)argc, sizeof(*binds));
	if (!binds)
		return 125;
	for (cmd = 2; cmd < argc && strcmp(argv[cmd], "--") != 0; cmd += 2) {
		if (cmd + 1 >= argc)
			goto usage;
		if (!strcmp(argv[cmd], "-u") &&
		    sscanf(argv[cmd + 1], "%u:%u%c", &u, &g, &end) == 2) {
			drop = 1;
			to_uid = (uid_t)u;
			to_gid = (gid_t)g;
		} else if (!strcmp(argv[cmd], "-s")) {
			stage = argv[cmd + 1];
		} else if (!strcmp(argv[cmd], "-b")) {
			binds[nbind++] = argv[cmd + 1];
		} else {
			goto usage;
		}
	}
	if (++cmd >= argc || (nbind && !stage) || ((stage || nbind) && !drop))
		goto usage;
	if (drop && geteuid() != 0) {
		fprintf(stderr, "jailinit: -u needs root (started as uid %u)\n", (unsigned)uid);
		return 125;
	}
	if (geteuid() != 0)
		flags |= CLONE_NEWUSER;
	if (stage)
		flags |= CLONE_NEWNS;
	if (unshare(flags) != 0) {
		fprintf(stderr, "jailinit: unshare(CLONE_NEWPID%s%s): %s\n",
			flags & CLONE_NEWUSER ? "|CLONE_NEWUSER" : "",
			flags & CLONE_NEWNS ? "|CLONE_NEWNS" : "", strerror(errno));
		return 125;
	}
	if ((flags & CLONE_NEWUSER) && map_self(uid, gid) != 0) {
		fprintf(stderr, "jailinit: cannot map uid %u: %s\n", (unsigned)uid, strerror(errno));
		return 125;
	}
	if (stage && stage_paths(stage, binds, nbind) != 0)
		return 125;
	if (drop && drop_to(to_uid, to_gid) != 0)
		return 125; /* never run the command as root */
	die_with(parent); /* after the last credential change, which clears it */
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
		execvp(argv[cmd], argv + cmd);
		fprintf(stderr, "jailinit: cannot run %s: %s\n", argv[cmd], strerror(errno));
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
usage:
	fprintf(stderr, "usage: jailinit PARENT_PID [-u UID:GID [-s STAGE [-b PATH]...]] -- "
			"COMMAND [ARG...]\n");
	return 125;
}
