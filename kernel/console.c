#include "console.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "loop.h"
#include "serial.h"
#include "time.h"

#define CONSOLE_CMDS_MAX 24
#define CONSOLE_LINE_MAX 128
#define CONSOLE_ARGS_MAX 8
#define CONSOLE_CHARS_PER_POLL 64 /* bounded work per main-loop round */

static struct {
	const char *name;
	console_cmd_fn fn;
	const char *help;
} console_cmds[CONSOLE_CMDS_MAX];
static unsigned console_ncmds;
static char console_line[CONSOLE_LINE_MAX];
static unsigned console_len;
static uint64_t console_last_tick = UINT64_MAX;

int console_register(const char *name, console_cmd_fn fn, const char *help)
{
	if (console_ncmds == CONSOLE_CMDS_MAX)
		return -ENOSPC;
	console_cmds[console_ncmds].name = name;
	console_cmds[console_ncmds].fn = fn;
	console_cmds[console_ncmds].help = help;
	console_ncmds++;
	return 0;
}

static void console_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (unsigned i = 0; i < console_ncmds; i++)
		printf("  %-10s %s\n", console_cmds[i].name, console_cmds[i].help);
}

static void console_exit(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("console: exit\n");
	kernel_exit(KEXIT_PASS);
}

static void console_execute(char *line)
{
	char *argv[CONSOLE_ARGS_MAX];
	int argc = 0;

	for (char *tok = strtok(line, " \t"); tok && argc < CONSOLE_ARGS_MAX; tok = strtok(NULL, " \t"))
		argv[argc++] = tok;
	if (argc == 0)
		return;
	for (unsigned i = 0; i < console_ncmds; i++) {
		if (!strcmp(argv[0], console_cmds[i].name)) {
			console_cmds[i].fn(argc, argv);
			printf("console: done %s\n", argv[0]);
			return;
		}
	}
	printf("console: unknown command '%s' (try 'help')\n", argv[0]);
}

static int console_poll(void *ctx)
{
	(void)ctx;
	/* The UART is read once per timer tick: a port read per main-loop round would cost more than the
	 * packets it runs between. */
	if (timer_ticks == console_last_tick)
		return 0;
	console_last_tick = timer_ticks;
	for (int i = 0; i < CONSOLE_CHARS_PER_POLL; i++) {
		int c = serial_getc();
		if (c < 0)
			return 0;
		if (c == '\r' || c == '\n') {
			console_line[console_len] = '\0';
			console_len = 0;
			console_execute(console_line);
		} else if (console_len < CONSOLE_LINE_MAX - 1) {
			console_line[console_len++] = (char)c;
		}
	}
	return 1;
}

void console_init(void)
{
	console_register("help", console_help, "list commands");
	console_register("exit", console_exit, "power off (QEMU exits with status 1)");
	loop_add_poller("console", console_poll, NULL);
}
