/* 16550 UART on COM1: output polled, input polled or (serial_rx_irq_enable) on IRQ 4. The console of both boot paths: QEMU puts it on stdio (-serial stdio). */
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
#define IER_RDI 0x01
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

/* With the FIFOs on, THR-empty means the whole 16-byte transmit FIFO is empty: one status read per 16 bytes
 * instead of one per byte. Under TCG every port access is a trip through QEMU, and the boot log was most of
 * the kernel's start-up time. */
#define UART_TX_FIFO 16

void serial_write(const char *buf, size_t len)
{
	size_t i = 0;
	int cr_done = 0; /* the '\r' before buf[i] == '\n' is already out */

	while (i < len) {
		for (int s = 0; s < SERIAL_SPIN_MAX && !(inb(COM1 + UART_LSR) & LSR_THR_EMPTY); s++)
			cpu_relax();
		for (int room = UART_TX_FIFO; room > 0 && i < len; room--) {
			if (buf[i] == '\n' && !cr_done) {
				outb(COM1 + UART_THR, '\r');
				cr_done = 1;
				continue;
			}
			outb(COM1 + UART_THR, (uint8_t)buf[i++]);
			cr_done = 0;
		}
	}
}

void serial_rx_irq_enable(void)
{
	outb(COM1 + UART_MCR, 0x0B);    /* DTR, RTS, OUT2 (gates the UART's interrupt line on PCs) */
	outb(COM1 + UART_IER, IER_RDI); /* received data available (and the FIFO's character timeout) */
}

int serial_getc(void)
{
	if (!(inb(COM1 + UART_LSR) & LSR_DATA_READY))
		return -1;
	return inb(COM1 + UART_RBR);
}
