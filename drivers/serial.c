/* 16550 UART on COM1, polled. The console of both boot paths: QEMU puts it on stdio (-serial stdio). */
#include "serial.h"

#include "cpu.h"

#define COM1 0x3f8
#define UART_THR 0 /* transmit holding register (DLAB=0) */
#define UART_RBR 0 /* receive buffer (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1
#define UART_DLH 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

/* Bound on waiting for the transmitter: a missing UART must not hang the kernel. */
#define SERIAL_SPIN_MAX 100000

void serial_init(void)
{
	outb(COM1 + UART_IER, 0x00); /* polled: no UART interrupts */
	outb(COM1 + UART_LCR, 0x80); /* DLAB on */
	outb(COM1 + UART_DLL, 0x01); /* 115200 baud */
	outb(COM1 + UART_DLH, 0x00);
	outb(COM1 + UART_LCR, 0x03); /* 8N1, DLAB off */
	outb(COM1 + UART_FCR, 0xC7); /* FIFOs on, cleared, 14-byte threshold */
	outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

static void serial_putc(char c)
{
	for (int i = 0; i < SERIAL_SPIN_MAX && !(inb(COM1 + UART_LSR) & LSR_THR_EMPTY); i++)
		cpu_relax();
	outb(COM1 + UART_THR, (uint8_t)c);
}

void serial_write(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n')
			serial_putc('\r');
		serial_putc(buf[i]);
	}
}

int serial_getc(void)
{
	if (!(inb(COM1 + UART_LSR) & LSR_DATA_READY))
		return -1;
	return inb(COM1 + UART_RBR);
}
