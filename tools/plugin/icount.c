/* icount: a QEMU TCG plugin that counts the guest instructions executed, into a file the host reads at any
 * moment while the guest runs.
 *
 *   qemu-system-x86_64 ... -plugin build/tools/libicount.so,out=/tmp/count
 *
 * The counter is a little-endian u64 at offset 0 of PATH, a shared mapping of it, so reading it costs the guest
 * nothing and needs no monitor command: bench.py reads it before and after a measured interval and takes the
 * difference. The count is added by an inline op at the start of every translated block (all of the block's
 * instructions at once), not per instruction: a block left early by an exception or an interrupt counts in
 * full, an error of at most one block per such event, and inline ops keep TCG at nearly its plugin-free speed
 * (a call-back per instruction would slow it several times and change what is measured). The op is not atomic
 * (QEMU's note on inline ops); the guest runs one vCPU (-smp 1, maxcpus=2), so no two vCPUs add at once.
 *
 * The plugin API header is QEMU's own (include/qemu/qemu-plugin.h, Debian source package `qemu`, fetched by
 * tools/fetch-qemu-plugin-h.sh); Debian's binary packages ship no plugins and no header. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define ICOUNT_MAP_BYTES 4096

static uint64_t *icount_counter;

/* Every block translated gets one inline add of its instruction count. */
static void icount_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	(void)id;
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, icount_counter,
	                                         qemu_plugin_tb_n_insns(tb));
}

/* PATH is created (or truncated) to one page and mapped shared: the host's reads see the current count. */
static int icount_map(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, ICOUNT_MAP_BYTES)) {
		fprintf(stderr, "icount: cannot create %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	void *p = mmap(NULL, ICOUNT_MAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "icount: cannot map %s: %s\n", path, strerror(errno));
		return -1;
	}
	icount_counter = p;
	return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	const char *path = NULL;
	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			path = argv[i] + 4;
		else {
			fprintf(stderr, "icount: unknown argument '%s' (expected out=PATH)\n", argv[i]);
			return -1;
		}
	}
	if (!path) {
		fprintf(stderr, "icount: out=PATH is required\n");
		return -1;
	}
	if (icount_map(path))
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, icount_tb_trans);
	return 0;
}
