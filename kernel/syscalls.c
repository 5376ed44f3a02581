/* newlib's system-call layer for this kernel (newlib is built with MISSING_SYSCALL_NAMES, so these are the
 * plain names). Standard output and error go to the serial console; there is no file system. sbrk is in mm.c. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "kernel.h"
#include "serial.h"

int write(int fd, const void *buf, size_t len);
int read(int fd, void *buf, size_t len);
int close(int fd);
int fstat(int fd, struct stat *st);
int isatty(int fd);
off_t lseek(int fd, off_t off, int whence);
int getpid(void);
int kill(int pid, int sig);
void _exit(int status);

int write(int fd, const void *buf, size_t len)
{
	if (fd != 1 && fd != 2) {
		errno = EBADF;
		return -1;
	}
	serial_write(buf, len);
	return (int)len;
}

int read(int fd, void *buf, size_t len)
{
	(void)buf;
	(void)len;
	errno = fd == 0 ? EAGAIN : EBADF;
	return -1;
}

int close(int fd)
{
	(void)fd;
	errno = EBADF;
	return -1;
}

int fstat(int fd, struct stat *st)
{
	if (fd < 0 || fd > 2) {
		errno = EBADF;
		return -1;
	}
	st->st_mode = S_IFCHR;
	return 0;
}

int isatty(int fd) { return fd >= 0 && fd <= 2; }

off_t lseek(int fd, off_t off, int whence)
{
	(void)fd;
	(void)off;
	(void)whence;
	errno = ESPIPE;
	return -1;
}

int getpid(void) { return 1; }

int kill(int pid, int sig)
{
	(void)pid;
	(void)sig;
	errno = EINVAL;
	return -1;
}

/* exit() and abort() end here: in test mode the status goes to QEMU, otherwise the CPU halts. */
void _exit(int status)
{
	if (kernel_test_mode)
		kernel_exit(status == 0 ? KEXIT_PASS : KEXIT_FAIL);
	panic("exit(%d) called", status);
}
