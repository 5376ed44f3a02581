#include "console.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "ioapic.h"
#include "kernel.h"
#include "loop.h"
#include "serial.h"
#include "time.h"
#include "trap.h"

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
static int console_irq;              /* input arrives by interrupt: no need to poll each tick */
static volatile int console_rx_pending;

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
	/* The UART is read when its interrupt said so, else once per timer tick (then asking for a wake-up at
	 * the next one, since there is no periodic tick): a port read per main-loop round would cost more than
	 * the packets it runs between. */
	if (console_irq) {
		if (!console_rx_pending)
			return 0;
		console_rx_pending = 0;
	} else {
		if (timer_ticks == console_last_tick) {
			timer_wake_at(timer_tick_tsc(timer_ticks + 1));
			return 0;
		}
		console_last_tick = timer_ticks;
	}
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
	console_rx_pending = 1; /* more input than one round takes: the line is still raised, keep reading */
	return 1;
}

static void console_rx_irq(struct trap_frame *f, void *ctx)
{
	(void)f;
	(void)ctx;
	console_rx_pending = 1;
	loop_kick();
}

void console_irq_init(void)
{
	int v = irq_alloc_vector();
	if (v < 0 || irq_register((unsigned)v, console_rx_irq, NULL))
		return;
	/* ISA IRQ 4, edge-triggered active-high unless the MADT overrides it. */
	uint16_t fl = acpi_info.isa_flags[4];
	int low = (fl & 3) == 3, level = ((fl >> 2) & 3) == 3;
	if (ioapic_route(acpi_info.isa_gsi[4], (uint8_t)v, level, low)) {
		irq_unregister((unsigned)v);
		return;
	}
	serial_rx_irq_enable();
	console_irq = 1;
	console_rx_pending = 1; /* whatever arrived before the interrupt was on */
}

void console_init(void)
{
	console_register("help", console_help, "list commands");
	console_register("exit", console_exit, "power off (QEMU exits with status 1)");
	loop_add_poller("console", console_poll, NULL);
}
